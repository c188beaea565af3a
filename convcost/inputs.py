"""Command-line arguments to spec sources: chain strings, files, directories, globs and ``-``.

An argument containing ``->`` is a chain. Otherwise an existing file or directory is read
(directories recursively for ``*.convcost``), a pattern with ``*``, ``?`` or ``[`` is globbed,
``-`` is standard input, and anything else is parsed as a chain (so ``256`` alone gets a
parse error, not "file not found"), unless it looks like a path.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, NamedTuple

from convcost.errors import ConvcostError, ReadError, Source

SPEC_SUFFIX = ".convcost"
#: Largest spec file read, in bytes: larger inputs are refused rather than parsed for minutes.
MAX_FILE_BYTES = 16 * 1024 * 1024


class Input(NamedTuple):
    """One source to parse; ``bare_names`` is 'text' for command-line chains, else 'line'."""

    source: Source
    bare_names: str


def collect(arguments: list[str], stdin: BinaryIO | None = None) -> tuple[list[Input], list[ConvcostError]]:
    """Expand ``arguments`` into sources, in order; unreadable ones become errors."""
    inputs: list[Input] = []
    errors: list[ConvcostError] = []
    for argument in arguments:
        try:
            expanded = _expand(argument, stdin)
        except ConvcostError as error:
            errors.append(error.detached())  # keep no frames alive
            continue
        for item in expanded:
            try:  # each file on its own: one unreadable file never hides the others
                inputs.append(item if isinstance(item, Input) else _read_file(item))
            except ConvcostError as error:
                errors.append(error.detached())  # keep no frames alive
    return inputs, errors


def _expand(argument: str, stdin: BinaryIO | None) -> list[Input | str]:
    """The inputs an argument stands for: parsed-later text, or file paths to read."""
    if "->" in argument or "→" in argument:
        return [Input(Source("<arg>", argument), "text")]
    if argument == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return [Input(_decode("<stdin>", stream.read(MAX_FILE_BYTES + 1)), "line")]
    if os.path.isdir(argument):
        import glob  # here and below only: it costs start-up time

        files = sorted(glob.glob(os.path.join(glob.escape(argument), "**", "*" + SPEC_SUFFIX),
                                 recursive=True))
        if not files:
            raise ReadError(f"no {SPEC_SUFFIX} files found in directory '{argument}'", argument)
        return [path for path in files if os.path.isfile(path)]
    if os.path.exists(argument):
        return [argument]
    if any(char in argument for char in "*?["):
        import glob

        files = sorted(path for path in glob.glob(argument, recursive=True)
                       if os.path.isfile(path))
        if not files:
            raise ReadError(f"no files match '{argument}'", argument)
        return list(files)
    if os.sep in argument or "/" in argument or argument.endswith(SPEC_SUFFIX):
        raise ReadError(f"no such file: '{argument}'", argument)
    return [Input(Source("<arg>", argument), "text")]


def _read_file(path: str) -> Input:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ReadError(f"cannot read '{path}': {error.strerror or error}", path) from None
    return Input(_decode(path, data), "line")


def _decode(name: str, data: bytes) -> Source:
    """UTF-8 text of ``data``; binary, oversized or non-UTF-8 input is a located error."""
    if len(data) > MAX_FILE_BYTES:
        raise ReadError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; spec files "
                        f"are small text files", name)
    if b"\0" in data:
        raise _byte_error(data, data.index(b"\0"), name,
                          "this looks like a binary file (it contains NUL bytes), not a spec")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _byte_error(data, error.start, name,
                          f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be decoded; "
                          f"save the file as UTF-8") from None
    return Source(name, text.removeprefix("\ufeff"))


def _byte_error(data: bytes, offset: int, name: str, message: str) -> ReadError:
    """An error at byte ``offset``, quoting its line with undecodable bytes replaced."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    raw = data[start: end if end >= 0 else len(data)]
    column = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    text = raw.decode("utf-8", errors="replace").replace("\0", "\ufffd")
    return ReadError(message, name, line, column, 1, text)
