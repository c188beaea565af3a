"""Plain-text tables that fit a width: the renderer of :class:`~convcost.render.Grid` for
terminals and pipes.

Linear in the rows (a 100,000-layer table costs about what its JSON does), no trailing spaces,
and never cropped: when the columns do not fit, the wrappable text columns (a layer's text, a
model's name) wrap first, down to a readable minimum; then whole columns are dropped, least
important first (:attr:`Column.priority`), and a note under the table names them. Key
columns (priority 0) are never dropped, numbers never cropped, units never lost. Titles and
notes wrap at spaces (long words are split, never cut), so no character is lost.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from convcost.render import Grid

#: Spaces between two columns.
GAP = 2
#: Spaces before the first column (rows, header, rule and footer; not the title).
MARGIN = 1
#: Narrowest a wrappable text column gets before columns are dropped (characters).
WRAP_MIN = 18


class Glyphs(NamedTuple):
    """The characters of rules and share bars (an ASCII set for encodings without them)."""

    rule: str
    filled: str
    empty: str


UNICODE = Glyphs("─", "█", "·")
ASCII = Glyphs("-", "#", ".")


class Layout(NamedTuple):
    """Which columns are shown (positions in the grid), how wide, and what was dropped."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]
    bars: bool
    dropped: tuple[str, ...]


def to_text(grid: Grid, width: int = 100, *, glyphs: Glyphs = UNICODE, color: bool = False
            ) -> str:
    """``grid`` as text of at most ``width`` columns (wider only when its key columns alone
    are wider), one newline-terminated line each, with its title and notes; ``color`` makes
    the title and the header bold (ANSI codes, not counted in the width)."""
    from convcost.render import BAR_WIDTH, cells

    width = max(width, 20)
    # Every cell formatted once, without bars; a shown share column gets its bars per row.
    plain = [cells(row, grid.columns, bars=False) for row in grid.rows]
    footer = cells(grid.footer, grid.columns, bars=False) if grid.footer is not None else None
    natural = _natural(grid, plain, footer)
    shares = [position for position, column in enumerate(grid.columns) if column.kind == "share"]
    barred = list(natural)
    for position in shares:
        longest = max((len(row[position]) for row in plain), default=0)
        barred[position] = max(natural[position], longest + BAR_WIDTH + 1)
    layout = fit(grid, natural, barred if shares else None, width - MARGIN)
    lines = [_bold(line, color) for line in _wrap(grid.title, width, "", "")]
    lines.append("")
    header = [grid.columns[position].name for position in layout.shown]
    row_lines = _row_writer(layout, grid)
    lines += [_bold(line.rstrip(), color) for line in row_lines(header)]
    lines.append(" " * MARGIN
                 + glyphs.rule * (sum(layout.widths) + GAP * (len(layout.widths) - 1)))
    bars = [position for position in shares if position in layout.shown] if layout.bars else []
    for raw, row in zip(grid.rows, plain):
        for position in bars:
            row[position] = cells([raw[position]], [grid.columns[position]], bars=True,
                                  glyphs=glyphs)[0]
        lines += row_lines([row[position] for position in layout.shown])
    if footer is not None:
        lines.append("")
        lines += row_lines([footer[position] for position in layout.shown])
    lines.append("")
    notes = list(grid.notes)
    if layout.dropped:
        notes.append(f"not shown at {width} columns: {', '.join(layout.dropped)} (a wider "
                     f"COLUMNS shows them; --format csv or json has every column)")
    for note in notes:
        for part in note.split("\n"):
            lines += _wrap(part.strip(), width, "  " + " " * (len(part) - len(part.lstrip())),
                           "    ")
    return "".join(line.rstrip() + "\n" for line in lines)


def fit(grid: Grid, natural: list[int], barred: list[int] | None, width: int) -> Layout:
    """Choose the shown columns and their widths for ``width`` characters, from the natural
    widths of the columns (``barred``: with share bars, when there are share columns)."""
    columns = grid.columns
    shown = list(range(len(columns)))
    dropped: list[str] = []

    def minimum(position: int, widths: list[int]) -> int:
        if columns[position].wraps:
            return min(widths[position], max(WRAP_MIN, len(columns[position].name)))
        return widths[position]

    def total(widths: list[int]) -> int:
        return sum(minimum(position, widths) for position in shown) + GAP * (len(shown) - 1)

    bars = barred is not None and total(barred) <= width  # the bars go before any column
    widths = barred if bars and barred is not None else natural
    by_priority = sorted((position for position in shown if columns[position].priority),
                         key=lambda position: (-columns[position].priority, -position))
    for position in by_priority:
        if total(widths) <= width:
            break
        shown.remove(position)
        dropped.append(columns[position].name)
    # Give the wrappable columns what room is left, up to their natural width.
    final = [minimum(position, widths) for position in shown]
    spare = width - (sum(final) + GAP * (len(shown) - 1))
    for slot, position in enumerate(shown):
        if spare <= 0:
            break
        grow = min(spare, widths[position] - final[slot])
        final[slot] += grow
        spare -= grow
    return Layout(tuple(shown), tuple(final), bars,
                  tuple(column.name for column in columns if column.name in dropped))


def _natural(grid: Grid, body: Sequence[Sequence[str]], footer: Sequence[str] | None
             ) -> list[int]:
    """Each column's width without wrapping: its longest cell or its name."""
    widths = [len(column.name) for column in grid.columns]
    for position, cells in enumerate(zip(*body)):
        widths[position] = max(widths[position], max(map(len, cells)))
    for position, cell in enumerate(footer or ()):
        widths[position] = max(widths[position], len(cell))
    return widths


def _bold(line: str, color: bool) -> str:
    return f"\x1b[1m{line}\x1b[0m" if color and line else line


def _row_writer(layout: Layout, grid: Grid) -> Callable[[Sequence[str]], list[str]]:
    """A function laying out one row (cells of the shown columns) as one line, or several
    when a wrappable cell is wider than its column."""
    slots = [(size, grid.columns[position].numeric)
             for position, size in zip(layout.shown, layout.widths)]
    margin, gap = " " * MARGIN, " " * GAP

    def write(texts: Sequence[str]) -> list[str]:
        if all(len(text) <= size for text, (size, _) in zip(texts, slots)):  # the common case
            return [margin + gap.join(text.rjust(size) if numeric else text.ljust(size)
                                      for text, (size, numeric) in zip(texts, slots))]
        pieces = [_wrap_cell(text, size) if len(text) > size else [text]
                  for text, (size, _) in zip(texts, slots)]
        height = max(len(piece) for piece in pieces)
        return [margin + gap.join(
            (piece[line] if line < len(piece) else "").rjust(size) if numeric else
            (piece[line] if line < len(piece) else "").ljust(size)
            for piece, (size, numeric) in zip(pieces, slots)) for line in range(height)]

    return write


def wrap_note(text: str, width: int) -> list[str]:
    """A line under the tables wrapped to ``width`` (continuations indented by two)."""
    return _wrap(text, width, "", "  ")


def _wrap_cell(text: str, width: int) -> list[str]:
    """A cell wrapped to ``width``: at spaces, or for a path without spaces (an ONNX node
    name such as ``/features/features.0/Conv``) after its '/' separators; every character is
    kept, and parts longer than a line are split."""
    if " " in text or "/" not in text:
        return _wrap(text, width, "", "")
    lines = [""]
    for part in re.findall(r"[^/]*/|[^/]+$", text):
        while part:
            room = width - len(lines[-1])
            if len(part) > room and lines[-1]:
                lines.append("")
                continue
            lines[-1] += part[:width]
            part = part[width:]
            if part:
                lines.append("")
    return lines


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """``text`` wrapped at spaces to ``width``; words longer than a line are split, never
    cut, so every non-space character is kept."""
    if not text:
        return [first.rstrip()]
    return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest,
                         break_long_words=True, break_on_hyphens=False) or [first.rstrip()]
