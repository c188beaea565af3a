"""convcost's one error type for bad input, with the source location and a caret display."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple


class Source(NamedTuple):
    """A named piece of spec text: a file path, ``<arg>`` or ``<stdin>``."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline ('' if out of range)."""
        lines = _split_lines(self.text)
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return ""


@lru_cache(maxsize=16)
def _split_lines(text: str) -> tuple[str, ...]:
    # Cached: the parser quotes many lines of one file; str caches its hash, so a hit is cheap.
    return tuple(text.split("\n"))


class Span(NamedTuple):
    """A place in a source: 1-based line and column, and a length in characters (>= 1)."""

    line: int
    column: int
    length: int = 1


class SpecError(Exception):
    """A spec that cannot be read, parsed or resolved.

    ``str(error)`` is the full message for a user::

        <arg>:1:19: error: unknown layer 'conv3x3'; expected ...
          256 -> 1x1(64) -> conv3x3(64)
                            ^^^^^^^
    """

    def __init__(
        self,
        message: str,
        source: str,
        line: int = 0,
        column: int = 0,
        length: int = 1,
        line_text: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.length = max(1, length)
        self.line_text = line_text

    @classmethod
    def at(cls, source: Source, span: Span, message: str) -> SpecError:
        """An error at ``span`` of ``source``, quoting the line it is on."""
        return cls(message, source.name, span.line, span.column, span.length,
                   source.line_text(span.line))

    @property
    def location(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}:{self.column}"
        return self.source

    def caret_lines(self) -> list[str]:
        """The quoted line and a caret line under the offending text ([] without a line)."""
        if not self.line or not self.line_text:
            return []
        text = self.line_text
        # Keep tabs in the indentation so the caret lines up in any terminal.
        prefix = "".join("\t" if ch == "\t" else " " for ch in text[: self.column - 1])
        width = max(1, min(self.length, len(text) - self.column + 1))
        return ["  " + text, "  " + prefix + "^" * width]

    def __str__(self) -> str:
        return "\n".join([f"{self.location}: error: {self.message}", *self.caret_lines()])

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "column": self.column,
                "message": self.message}
