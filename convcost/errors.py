"""convcost's errors: one root, :class:`ConvcostError`, with a kind per family.

Every error is *located*: it names its source (a file, ``<arg>``, ``<stdin>``, a path as
typed) and, when it can, a line and column, and ``str(error)`` quotes the line with a caret::

    <arg>:1:19: error: unknown layer 'conv3x3'; expected ...
      256 -> 1x1(64) -> conv3x3(64)
                        ^^^^^^^

The families (``kind`` in JSON error entries):

- :class:`InputError`: the input cannot be used. :class:`ReadError` (``"read"``): a path
  that cannot be read, found or decoded; :class:`SpecError` (``"spec"``): spec text that
  cannot be parsed or resolved, with a span; :class:`BaselineError` (``"baseline"``): a
  ``check --baseline`` document that cannot be used; :class:`OnnxError` (``"onnx"``): an ONNX
  file that cannot be read or lowered (not ONNX, truncated, an unsupported op).
- :class:`BenchError`: a model that cannot be measured. :class:`BenchRefused`
  (``"bench"``): too large for the memory limit, or a failure inside the benchmark;
  :class:`UnsupportedDtype` (``"dtype"``): a dtype NumPy cannot execute.
- :class:`UsageError` (``"usage"``): options that do not fit together (an unknown
  ``--baseline`` name, say).

A bug in convcost itself (a step kind with no cost handler, an executed shape that differs
from the analysis) is :class:`InternalError`, never silently ignored.
"""

from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from typing import NamedTuple, TypeVar

_E = TypeVar("_E", bound="ConvcostError")


class Source(NamedTuple):
    """A named piece of spec text: a file path, ``<arg>`` or ``<stdin>``."""

    name: str
    text: str

    def lines(self) -> tuple[str, ...]:
        """The lines of the text: '\\n', '\\r\\n' and a lone '\\r' each end one."""
        return _split_lines(self.text)

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline ('' if out of range)."""
        lines = _split_lines(self.text)
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return ""


@lru_cache(maxsize=16)
def _split_lines(text: str) -> tuple[str, ...]:
    # Cached: the parser quotes many lines of one file; str caches its hash, so a hit is cheap.
    if "\r" not in text:
        return tuple(text.split("\n"))
    return tuple(_LINE_END.split(text))


_LINE_END = re.compile(r"\r\n?|\n")


class Span(NamedTuple):
    """A place in a source: 1-based line and column, and a length in characters (>= 1)."""

    line: int
    column: int
    length: int = 1


#: Messages longer than this have long words cut to _WORD_SHOWN characters, then the whole
#: message to _MAX_MESSAGE: every message stays bounded whatever the input quoted in it.
_LONG_MESSAGE = 600
_MAX_MESSAGE = 1000
_WORD_SHOWN = 40
#: A word too long to quote whole (compiled by ``re``'s cache on first use: it is rare).
_LONG_WORD = r"\S{" + str(_WORD_SHOWN + 20) + ",}"
#: Lines longer than _LONG_LINE are quoted above a caret as a window of _QUOTED characters.
_LONG_LINE = 240
_QUOTED = 160


class ConvcostError(Exception):
    """The root of every error convcost reports: a message and where it applies."""

    #: The error family, as JSON error entries name it.
    kind = "error"

    def __init__(
        self,
        message: str,
        source: str,
        line: int = 0,
        column: int = 0,
        length: int = 1,
        line_text: str = "",
    ) -> None:
        if len(message) > _LONG_MESSAGE:  # a quoted 10 MB word must not become the message
            message = re.sub(_LONG_WORD, lambda word: word.group()[:_WORD_SHOWN] + "...",
                             message)
            message = message[:_MAX_MESSAGE] + ("..." if len(message) > _MAX_MESSAGE else "")
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.length = max(1, length)
        self.line_text = line_text

    @classmethod
    def at(cls: type[_E], source: Source, span: Span, message: str) -> _E:
        """An error at ``span`` of ``source``, quoting the line it is on."""
        return cls(message, source.name, span.line, span.column, span.length,
                   source.line_text(span.line))

    def detached(self: _E) -> _E:
        """This error without the frames it was raised through (nor those of an error it
        was raised while handling): stored errors must not keep whole parses alive."""
        self.__traceback__ = None
        self.__context__ = None
        self.__cause__ = None
        return self

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the location when pickled (the default would pass only the message).
        return (type(self), (self.message, self.source, self.line, self.column, self.length,
                             self.line_text))

    @property
    def location(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}:{self.column}"
        return self.source

    def caret_lines(self) -> list[str]:
        """The quoted line and a caret line under the offending text ([] without a line).

        A long line is quoted as a window around the column ('...' marks the cuts), so
        errors on a megabyte-long line stay a few lines long."""
        if not self.line or not self.line_text:
            return []
        text, start = self.line_text, self.column - 1
        left, right = 0, len(text)
        if right > _LONG_LINE:
            left = max(0, min(start - _QUOTED // 3, right - _QUOTED))
            right = left + _QUOTED
        before = "..." if left else ""
        shown = before + text[left:right] + ("..." if right < len(text) else "")
        # Keep tabs in the indentation so the caret lines up in any terminal.
        prefix = " " * len(before) + "".join("\t" if ch == "\t" else " "
                                             for ch in text[left:start])
        width = max(1, min(self.length, len(text) - start, right - start))
        return ["  " + shown, "  " + prefix + "^" * width]

    def __str__(self) -> str:
        return "\n".join([f"{self.location}: error: {self.message}", *self.caret_lines()])

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "column": self.column,
                "kind": self.kind, "message": self.message}


class InputError(ConvcostError):
    """Input that cannot be used."""

    kind = "input"


class ReadError(InputError):
    """A path that cannot be found, read or decoded as a spec."""

    kind = "read"


class SpecError(InputError):
    """A spec that cannot be parsed or resolved, located by a span."""

    kind = "spec"


class SpecWarning(SpecError):
    """Spec text that analyses but probably does not mean what it says (an input written
    channels first, say): reported on standard error, never an error."""

    kind = "warning"

    def __str__(self) -> str:
        return super().__str__().replace(": error: ", ": warning: ", 1)


class BaselineError(InputError):
    """A ``check --baseline`` document that cannot be used."""

    kind = "baseline"


class OnnxError(InputError):
    """An ONNX model that cannot be read or lowered; the message names the node."""

    kind = "onnx"


class BenchError(ConvcostError):
    """A model that cannot be benchmarked."""

    kind = "bench"


class BenchRefused(BenchError):
    """A benchmark refused: above the memory limit, or failed while running."""

    kind = "bench"


class UnsupportedDtype(BenchError):
    """A dtype convcost can analyse but NumPy cannot execute."""

    kind = "dtype"


class UsageError(ConvcostError):
    """Options that do not fit the inputs (e.g. ``--baseline`` names no model)."""

    kind = "usage"


class InternalError(ConvcostError):
    """A bug in convcost (a kind with no cost handler, an executed shape that differs from the
    analysis): reported as such, never silently ignored."""

    kind = "internal"


def interrupted_while_starting() -> None:
    """Ctrl-C while convcost's modules load: as the ``convcost`` command (or ``python -m
    convcost``), end quietly with exit code 130; imported as a library, re-raise."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if program not in ("convcost", "-m", "__main__.py"):
        raise KeyboardInterrupt
    if sys.stderr is not None:
        sys.stderr.write("convcost: interrupted\n")
        sys.stderr.flush()
    os._exit(130)
