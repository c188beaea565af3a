"""Making odd terminals and streams safe before any command runs.

- Environment: an invalid or zero ``COLUMNS``/``LINES`` counts as unset; ``FORCE_COLOR=0``
  (or ``false``, ``no``) turns colour off rather than on, an empty ``FORCE_COLOR`` or
  ``NO_COLOR`` counts as unset (https://force-color.org, https://no-color.org).
- Encodings: text the output encoding cannot hold (bars and box drawing under
  ``PYTHONIOENCODING=ascii`` or a C locale, file names with bytes that are not UTF-8) is
  written with ASCII stand-ins (``#`` for a bar, ``->`` for an arrow, ``x`` for ``×``) or
  ``\\xNN``/``\\uNNNN`` escapes, never an encoding error.
- Pipes: when the reader of standard output goes away (``| head -1``), the rest of the
  output is dropped quietly and the run goes on, so its diagnostics and exit code are the
  ones it earned.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
from collections.abc import MutableMapping

#: The name of the codec error handler registered by :func:`prepare_streams`.
ERRORS = "convcost-ascii"
#: ASCII stand-ins for the non-ASCII characters convcost itself prints.
ASCII_GLYPHS: dict[str, str] = {
    "→": "->", "×": "x", "…": "...", "−": "-", "–": "-", "—": "-", "·": ".", "•": "*",
    "█": "#", "▉": "#", "▊": "#", "▋": "#", "▌": "#", "▍": "#", "▎": "#", "▏": "#",
    "▐": "#", "░": ".", "▒": ":", "▓": "#", "■": "#", "━": "=", "─": "-", "│": "|",
    "┃": "|", "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+",
    "┴": "+", "┼": "+", "╭": "+", "╮": "+", "╰": "+", "╯": "+", "═": "=", "║": "|",
    "µ": "u", "≈": "~", "≤": "<=", "≥": ">=", "±": "+-", "✓": "ok", "✗": "x",
}
_OFF = frozenset({"0", "false", "no", "off"})


def _fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: ASCII stand-ins, else escapes (surrogates from undecodable
    file-name bytes as ``\\xNN``, the byte they stand for)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    pieces = []
    for char in error.object[error.start:error.end]:
        code = ord(char)
        if char in ASCII_GLYPHS:
            pieces.append(ASCII_GLYPHS[char])
        elif 0xDC80 <= code <= 0xDCFF:
            pieces.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFF:
            pieces.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            pieces.append(f"\\u{code:04x}")
        else:
            pieces.append(f"\\U{code:08x}")
    return "".join(pieces), error.end


codecs.register_error(ERRORS, _fallback)


def prepare_environment(environ: MutableMapping[str, str]) -> None:
    """Normalise the variables terminals and colour libraries read (see the module doc)."""
    for name in ("COLUMNS", "LINES"):
        value = environ.get(name)
        if value is not None and not (value.strip().isascii() and value.strip().isdigit()
                                      and int(value) > 0):
            del environ[name]
    force = environ.get("FORCE_COLOR")
    if force is not None and (not force.strip() or force.strip().lower() in _OFF):
        del environ["FORCE_COLOR"]
        if force.strip():
            environ["NO_COLOR"] = "1"
    if environ.get("NO_COLOR") == "":
        del environ["NO_COLOR"]
    if environ.get("TERM") == "dumb" and "FORCE_COLOR" not in environ:
        environ["NO_COLOR"] = "1"  # Emacs' shell, some CI logs: escape codes show as text


def prepare_streams() -> str | None:
    """Make the standard streams safe (see the module doc); a reason when standard output
    cannot be used at all (it was closed: ``>&-``), else None."""
    if sys.stderr is None:  # closed: diagnostics are lost, exit codes still tell
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    elif isinstance(sys.stderr, io.TextIOWrapper):
        sys.stderr.reconfigure(errors=ERRORS)
        try:
            descriptor = sys.stderr.fileno()
        except (OSError, ValueError):  # not a real stream (tests capture it)
            descriptor = -1
        if descriptor >= 0:
            # A diagnostic that cannot be written (``2>&1 | head``, ``2>/dev/full``) is lost,
            # but must not turn the run's exit code into 1 through an error while reporting.
            sys.stderr.flush()
            _KEEP.append(sys.stderr)
            lossy = io.BufferedWriter(_Lossy(descriptor))  # type: ignore[type-var]
            sys.stderr = io.TextIOWrapper(lossy, encoding=sys.stderr.encoding, errors=ERRORS,
                                          line_buffering=True, write_through=True)
    if sys.stdout is None:
        return "standard output is closed; nothing can be written"
    stdout = sys.stdout
    try:
        descriptor = stdout.fileno()
    except (OSError, ValueError, AttributeError):  # not a real stream (tests capture it)
        if isinstance(stdout, io.TextIOWrapper):
            stdout.reconfigure(errors=ERRORS)
        return None
    stdout.flush()
    writer = io.BufferedWriter(_PipeSafe(descriptor))  # type: ignore[type-var]
    sys.stdout = io.TextIOWrapper(writer, encoding=stdout.encoding, errors=ERRORS,
                                  line_buffering=bool(stdout.line_buffering))
    _KEEP.append(stdout)  # the original must not be collected: it would close descriptor 1
    return None


_KEEP: list[object] = []


class _Descriptor(io.RawIOBase):
    """A standard stream's descriptor as a raw stream; subclasses decide what a failed write
    means."""

    def __init__(self, descriptor: int) -> None:
        super().__init__()
        self.descriptor = descriptor

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def isatty(self) -> bool:
        return os.isatty(self.descriptor)


class _Lossy(_Descriptor):
    """Standard error's descriptor; writes that fail (no reader, disk full) are dropped."""

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return os.write(self.descriptor, data)
        except OSError:
            return len(data)

    def close(self) -> None:  # never close descriptor 2 itself
        pass


def drop_output(descriptor: int) -> None:
    """Point ``descriptor`` at /dev/null: the reader of our output went away (``| head``), so
    the rest is dropped quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


class _PipeSafe(_Descriptor):
    """Standard output's descriptor; once the reader is gone, writes go to /dev/null."""

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return os.write(self.descriptor, data)
        except BrokenPipeError:
            drop_output(self.descriptor)
            return len(data)

    def close(self) -> None:  # never close descriptor 1 itself
        self.flush()
        super().close()
