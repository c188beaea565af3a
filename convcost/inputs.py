"""Command-line arguments to spec sources: chain strings, files, directories, globs and ``-``.

An argument containing ``->`` is a chain. Otherwise an existing file or directory is read
(directories recursively for ``*.convcost`` and ``*.onnx``), a pattern with ``*``, ``?`` or
``[`` is globbed, ``-`` is standard input, and anything else is parsed as a chain (so ``256``
alone gets a parse error, not "file not found"), unless it looks like a path.

A file ending in ``.onnx``, or binary input that starts like a serialized ONNX model, is an
ONNX input: its bytes are kept for :func:`convcost.importers.onnx.read_onnx`.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
from typing import BinaryIO, NamedTuple

from convcost.errors import ConvcostError, ReadError, Source

SPEC_SUFFIX = ".convcost"
ONNX_SUFFIX = ".onnx"
#: Largest spec file read, in bytes: larger inputs are refused rather than parsed for minutes.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Largest ONNX file read, in bytes (protobuf's own limit is 2 GiB).
MAX_ONNX_BYTES = 2 * 1024 * 1024 * 1024
#: Prefixed by :func:`mark_specs` to a command-line chain that starts with '-' so that option
#: parsing takes it for an argument; a NUL can never be part of a real argument.
SPEC_MARK = "\0"
#: Byte-order marks and their encodings, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


class Input(NamedTuple):
    """One source to parse; ``bare_names`` is 'text' for command-line chains, else 'line'.

    ``onnx`` holds the bytes of an ONNX model (``source.text`` is then empty)."""

    source: Source
    bare_names: str
    onnx: bytes | None = None


def mark_specs(arguments: list[str]) -> list[str]:
    """``arguments`` with every chain that starts with '-' (``"-1 -> relu"``, ``"-> relu"``)
    marked by :data:`SPEC_MARK`, so option parsing keeps it as a spec (:func:`collect` drops
    the mark), and chains decoded as UTF-8. An argument containing '->' is a chain: no
    option contains one."""
    return [_marked(argument) if _is_chain(argument) else argument for argument in arguments]


def _marked(chain: str) -> str:
    """A chain argument as it was typed: under a C locale Python decodes argv as ASCII, so
    UTF-8 text ('56×56×64 → relu') arrives as surrogates; chains are text, not paths."""
    try:
        chain.encode("utf-8")
    except UnicodeEncodeError:
        chain = chain.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return SPEC_MARK + chain if chain[:1] == "-" else chain


def _is_chain(argument: str) -> bool:
    # '\udce2\udc86\udc92' is '→' as a C locale decodes its UTF-8 bytes
    return "->" in argument or "→" in argument or "\udce2\udc86\udc92" in argument


def display_name(path: str) -> str:
    """``path`` as valid text: bytes that are not UTF-8 (kept by Python as surrogates) are
    shown as ``\\xNN`` escapes, so tables print and JSON stays UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


def collect(arguments: list[str], stdin: BinaryIO | None = None) -> tuple[list[Input], list[ConvcostError]]:
    """Expand ``arguments`` into sources, in order; unreadable ones become errors."""
    inputs: list[Input] = []
    errors: list[ConvcostError] = []
    for argument in arguments:
        argument = argument.removeprefix(SPEC_MARK)
        try:
            expanded = _expand(argument, stdin)
        except ConvcostError as error:
            errors.append(error.detached())  # keep no frames alive
            continue
        for item in expanded:
            if isinstance(item, ConvcostError):  # an unreadable directory under a directory
                errors.append(item)
                continue
            try:  # each file on its own: one unreadable file never hides the others
                inputs.append(item if isinstance(item, Input) else _named(_read_file(item)))
            except ConvcostError as error:
                error.source = source_path(error.source)  # named as its models would be
                errors.append(error.detached())  # keep no frames alive
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


def _expand(argument: str, stdin: BinaryIO | None) -> list[Input | str | ConvcostError]:
    """The inputs an argument stands for: parsed-later text, file paths to read, or the
    errors of directories a scan could not read."""
    if _is_chain(argument):
        return [Input(Source("<arg>", argument), "text")]
    if argument == "-":
        if stdin is None and sys.stdin is not None:
            stdin = sys.stdin.buffer
        if stdin is None:  # a closed standard input (``<&-``) reads as empty, not a crash
            return [Input(Source("<stdin>", ""), "line")]
        return [_input("<stdin>", stdin, False)]
    if os.path.isdir(argument):
        found = _scan(argument)
        if not found:
            name = display_name(argument)
            raise ReadError(f"no {SPEC_SUFFIX} or {ONNX_SUFFIX} files found in directory "
                            f"'{name}'", name)
        return found
    if os.path.exists(argument):
        return [argument]
    if any(char in argument for char in "*?["):
        import glob

        files = sorted(path for path in glob.glob(argument, recursive=True)
                       if os.path.isfile(path))
        if not files:
            raise ReadError(f"no files match '{display_name(argument)}'", display_name(argument))
        return list(files)
    if os.sep in argument or "/" in argument or argument.endswith((SPEC_SUFFIX, ONNX_SUFFIX)):
        raise ReadError(f"no such file: '{display_name(argument)}'", display_name(argument))
    return [Input(Source("<arg>", argument), "text")]


def _scan(directory: str) -> list[Input | str | ConvcostError]:
    """The ``*.convcost`` and ``*.onnx`` files under ``directory``, sorted, each real file once.

    Directory symlinks are followed, but never into a directory already visited (a link
    loop, or a link to a parent, is walked once); a directory that cannot be listed is an
    error with the OS's reason (its models would otherwise read as removed)."""
    found: list[str] = []
    problems: list[Input | str | ConvcostError] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    suffixes = (SPEC_SUFFIX, ONNX_SUFFIX)

    def walk(path: str) -> None:
        try:
            info = os.stat(path)
            key = (info.st_dev, info.st_ino)
            if key in seen_dirs:
                return
            seen_dirs.add(key)
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            name = display_name(path)
            problems.append(ReadError(f"cannot read directory '{name}': "
                                      f"{error.strerror or error}", name))
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.name.endswith(suffixes) and entry.is_file()
            except OSError:  # a link to itself: ELOOP
                is_dir = is_file = False
            if is_dir:
                walk(entry.path)
            elif not is_file and entry.name.endswith(suffixes) and entry.is_symlink():
                # A spec behind a broken link would otherwise read as removed, and pass.
                try:
                    os.stat(entry.path)
                except OSError as error:
                    name = display_name(entry.path)
                    problems.append(ReadError(f"cannot read '{name}': {error.strerror or error}"
                                              f" (a broken symbolic link)", name))
            elif is_file:
                try:
                    info = entry.stat()
                except OSError:
                    continue
                if (info.st_dev, info.st_ino) not in seen_files:
                    seen_files.add((info.st_dev, info.st_ino))
                    found.append(entry.path)

    walk(directory)
    return [*problems, *sorted(found)]  # sorted by path, as a recursive glob lists them


class NotAFile(Exception):
    """Raised by :func:`open_file` for a path that names no file: :attr:`what` is ``"a
    directory"`` or ``"a device or socket"`` (each reader says so in its own words)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def open_file(path: str) -> BinaryIO:
    """``path`` opened for reading: a regular file, or a FIFO opened without blocking on a
    missing writer (it then reads as empty; with a writer, as ``<(command)`` gives, it is read
    until closed). :class:`NotAFile` for a directory, device or socket (``/dev/zero``,
    ``/dev/tty``); ``OSError`` as opening raises it."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer to appear.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISFIFO(mode):
            os.set_blocking(descriptor, True)  # no writer: a read returns end-of-file at once
        elif not stat.S_ISREG(mode):
            raise NotAFile("a directory" if stat.S_ISDIR(mode) else "a device or socket")
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _read_file(path: str) -> Input:
    name = display_name(path)
    try:
        if path.lower().endswith(ONNX_SUFFIX):
            from convcost.importers.onnx_wire import read_model_bytes  # no onnx import

            try:
                return Input(Source(name, ""), "line", read_model_bytes(path, MAX_ONNX_BYTES))
            except ValueError:
                raise _too_large(path) from None
        with open_file(path) as handle:
            return _input(name, handle, False)
    except NotAFile:
        raise ReadError(f"'{name}' is not a file but a device or socket; to read a stream, "
                        f"pipe it to standard input and pass '-'", name) from None
    except OSError as error:
        raise ReadError(f"cannot read '{name}': {error.strerror or error}", name) from None


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

    return Input(Source(name, ""), "line", strip_weights(data))


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


def bom_encoding(data: bytes) -> str | None:
    """The encoding named by the byte-order mark ``data`` starts with, or None."""
    return next((encoding for bom, encoding in _BOMS if data.startswith(bom)), None)


def _decode(name: str, data: bytes) -> Source:
    """UTF-8 text of ``data``; binary, oversized or non-UTF-8 input is a located error."""
    if len(data) > MAX_FILE_BYTES:
        raise ReadError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; spec files "
                        f"are small text files", name)
    for bom, encoding in _BOMS:  # PowerShell writes UTF-16 with a BOM by default
        if data.startswith(bom):
            try:
                return Source(name, data.decode(encoding).removeprefix("\ufeff"))
            except UnicodeDecodeError as error:
                raise ReadError(f"not {encoding.upper().removesuffix('-SIG')} text despite its "
                                f"byte-order mark: bytes {error.start}-{error.end - 1} cannot "
                                f"be decoded", name) from None
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
