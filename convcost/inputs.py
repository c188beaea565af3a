"""Command-line arguments to spec sources: chain strings, files, directories, globs and ``-``.

An argument containing ``->`` is a chain. Otherwise an existing file or directory is read
(directories recursively for ``*.convcost`` and ``*.onnx``), a pattern with ``*``, ``?`` or
``[`` is globbed, ``-`` is standard input, and anything else is parsed as a chain (so ``256``
alone gets a parse error, not "file not found"), unless it looks like a path.

A file ending in ``.onnx``, or binary input that starts like a serialized ONNX model, is an
ONNX input: its bytes are kept for :func:`convcost.importers.onnx.read_onnx`.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, NamedTuple

from convcost.errors import ConvcostError, ReadError, Source

SPEC_SUFFIX = ".convcost"
ONNX_SUFFIX = ".onnx"
#: Largest spec file read, in bytes: larger inputs are refused rather than parsed for minutes.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Largest ONNX file read, in bytes (protobuf's own limit is 2 GiB).
MAX_ONNX_BYTES = 2 * 1024 * 1024 * 1024


class Input(NamedTuple):
    """One source to parse; ``bare_names`` is 'text' for command-line chains, else 'line'.

    ``onnx`` holds the bytes of an ONNX model (``source.text`` is then empty)."""

    source: Source
    bare_names: str
    onnx: bytes | None = None


def collect(arguments: list[str], stdin: BinaryIO | None = None) -> tuple[list[Input], list[ConvcostError]]:
    """Expand ``arguments`` into sources, in order; unreadable ones become errors."""
    inputs: list[Input] = []
    errors: list[ConvcostError] = []
    for argument in arguments:
        try:
            expanded = _expand(argument, stdin)
        except ConvcostError as error:
            errors.append(error.with_traceback(None))  # keep no frames alive
            continue
        for item in expanded:
            if isinstance(item, ConvcostError):  # an unreadable directory under a directory
                errors.append(item)
                continue
            try:  # each file on its own: one unreadable file never hides the others
                inputs.append(item if isinstance(item, Input) else _named(_read_file(item)))
            except ConvcostError as error:
                error.source = source_path(error.source)  # named as its models would be
                errors.append(error.with_traceback(None))  # keep no frames alive
    return inputs, errors


def source_path(path: str) -> str:
    """The one spelling of a file's path, which names its unnamed models: ``specs/x``,
    ``./specs/x``, ``specs//x`` and the absolute path are the same file, named relative to
    the working directory when inside it (else absolute). ``<arg>`` and ``<stdin>`` stay."""
    if not path or (path.startswith("<") and path.endswith(">")):
        return path
    try:
        absolute = os.path.abspath(path)
        relative = os.path.relpath(absolute)
    except (ValueError, OSError):  # another drive on Windows, or no working directory
        return os.path.normpath(path)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return absolute
    return relative


def _named(item: Input) -> Input:
    """``item`` named by :func:`source_path` (it was opened as typed)."""
    return item._replace(source=item.source._replace(name=source_path(item.source.name)))


def _unreadable_directories(top: str) -> list[ConvcostError]:
    """An error, with the OS's reason, for each directory under ``top`` that cannot be
    listed (glob skips them silently, and their models would read as removed)."""
    errors: list[ConvcostError] = []

    def note(error: OSError) -> None:
        name = error.filename if isinstance(error.filename, str) else top
        errors.append(ReadError(f"cannot read directory '{name}': "
                                f"{error.strerror or error}", name))
    for _ in os.walk(top, onerror=note):
        pass
    return errors


def _expand(argument: str, stdin: BinaryIO | None) -> list[Input | str | ConvcostError]:
    """The inputs an argument stands for: parsed-later text, or file paths to read."""
    if "->" in argument or "→" in argument:
        return [Input(Source("<arg>", argument), "text")]
    if argument == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return [_input("<stdin>", stream, False)]
    if os.path.isdir(argument):
        import glob  # here and below only: it costs start-up time

        files = sorted(path for suffix in (SPEC_SUFFIX, ONNX_SUFFIX)
                       for path in glob.glob(os.path.join(glob.escape(argument), "**",
                                                          "*" + suffix), recursive=True))
        unreadable = _unreadable_directories(argument)
        if not files and not unreadable:
            raise ReadError(f"no {SPEC_SUFFIX} or {ONNX_SUFFIX} files found in directory "
                            f"'{argument}'", argument)
        return [*unreadable, *(path for path in files if os.path.isfile(path))]
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
        if path.lower().endswith(ONNX_SUFFIX):
            from convcost.importers.onnx_wire import read_model_bytes  # no onnx import

            try:
                return Input(Source(path, ""), "onnx", read_model_bytes(path, MAX_ONNX_BYTES))
            except ValueError:
                raise _too_large(path) from None
        with open(path, "rb") as handle:
            return _input(path, handle, False)
    except OSError as error:
        raise ReadError(f"cannot read '{path}': {error.strerror or error}", path) from None


def _too_large(name: str) -> ReadError:
    return ReadError(f"file is larger than {MAX_ONNX_BYTES // 1024 ** 3} GiB, the limit of an "
                     f"ONNX model", name)


def _input(name: str, stream: BinaryIO, onnx: bool) -> Input:
    """The spec text or the ONNX bytes read from ``stream``."""
    data = stream.read((MAX_ONNX_BYTES if onnx else MAX_FILE_BYTES) + 1)
    if not onnx and _sniff_onnx(data):
        onnx = True
        data += stream.read(MAX_ONNX_BYTES + 1 - len(data))
    if not onnx:
        return Input(_decode(name, data), "line")
    if len(data) > MAX_ONNX_BYTES:
        raise _too_large(name)
    from convcost.importers.onnx_wire import strip_weights

    return Input(Source(name, ""), "onnx", strip_weights(data))


def _sniff_onnx(data: bytes) -> bool:
    """Binary data starting like a serialized ONNX model: field 1 (ir_version, a small
    varint) first, as exporters write it. Text never starts so; parsing decides the rest."""
    if len(data) < 3 or data[0] != 0x08 or not 0 < data[1] < 64:
        return False
    head = data[:65536]
    if b"\0" in head:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


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
