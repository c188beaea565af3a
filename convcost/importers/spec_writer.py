"""A program written back as a readable spec file: :func:`program_to_spec`.

The structure comes from :func:`convcost.importers.structure.recover` (steps, values, kinds
and attributes only, never ``Step.text``), so spec programs and imported ONNX programs are
written alike. Identical consecutive items fold into ``*N`` (a sequence of several items into
``(A -> B)*N``); blocks used more than once, or long ones, become ``let`` fragments named from
their form and output channels (``res256``, ``cat480``, ``se96``, ``split116_down``). The
model's body is laid out one stage per line, each after a ``#`` comment with the stage's output
shape and the node (``Step.path``; the ONNX node name for imported models) of its first layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple, Union

from convcost.importers.layers import layer_text
from convcost.importers.structure import Block, Layer, Node, recover
from convcost.model.program import Program, Shape, Step

#: Longest run of items tried as the period of a repeat (bounds the folding time).
MAX_PERIOD = 24
#: Blocks whose text is longer than this become fragments even when used once.
FRAGMENT_CHARS = 60
#: Lines are wrapped near this width.
WIDTH = 100
_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


class Compound(NamedTuple):
    """A block with folded parts."""

    block: Block
    parts: tuple[tuple[Entry, ...], ...]


class Repeat(NamedTuple):
    """``body*count`` (``(A -> B)*count`` for a body of several items)."""

    body: tuple[Entry, ...]
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose: the domain name


Entry = Union[Layer, Compound, Repeat]


def program_to_spec(program: Program, *, name: str | None = None,
                    header: Sequence[str] = ()) -> str:
    """``program`` as spec text: ``let`` fragments, then ``name: HxWxC -> ...`` one stage per
    line. ``header`` lines are written first as ``#`` comments.

    Raises :class:`~convcost.errors.SpecError` naming the node where the graph cannot be
    written (not series-parallel, a merge that is not a concat, residual add or gate, a slice
    outside a split, asymmetric padding).
    """
    return _Writer(program).write(name if name is not None else program.name, header)


def model_name(name: str) -> str:
    """``name`` made a valid model name (letters, digits, ``_``, ``-``, ``.``)."""
    cleaned = _NAME.sub("_", name)
    return cleaned or "model"


def _comment(text: str) -> str:
    """``text`` safe inside a ``#`` comment line (no line breaks or control characters)."""
    return "".join(char if char.isprintable() else "?" for char in text)


class _Writer:
    __slots__ = ("program", "keys", "uses", "names", "definitions", "taken")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.keys: dict[int, str] = {}  # id(entry) -> its text without fragments
        self.uses: dict[str, int] = {}  # block text -> times it is written
        self.names: dict[str, str] = {}  # block text -> fragment name
        self.definitions: list[str] = []
        self.taken: set[str] = set()

    def write(self, name: str, header: Sequence[str]) -> str:
        entries = self._fold(recover(self.program))
        self._count(entries)
        for entry in entries:
            self._define(entry)
        lines = [f"# {_comment(line)}" for line in header]
        if lines:
            lines.append("")
        if self.definitions:
            lines += [*self.definitions, ""]
        shape = self.program.input
        lines.append(f"{model_name(name)}: {shape.h}x{shape.w}x{shape.c}")
        for stage in _stages(entries):
            first, out = _first(stage[0]), _output(stage[-1])
            lines.append(f"    # {out}, from node {_comment(first.path)}")
            lines += self._arrows([self._text(entry) for entry in stage])
        return "\n".join(lines) + "\n"

    # -- folding ---------------------------------------------------------------------------

    def _fold(self, nodes: Sequence[Node] | Sequence[Entry]) -> tuple[Entry, ...]:
        """``nodes`` with their blocks' parts folded, then runs of identical items folded."""
        entries: list[Entry] = []
        for node in nodes:
            if isinstance(node, Block):
                node = Compound(node, tuple(self._fold(part) for part in node.parts))
            entries.append(node)  # type: ignore[arg-type]
        keys = [self._key(entry) for entry in entries]
        folded: list[Entry] = []
        at, total = 0, len(entries)
        while at < total:
            best, times = 1, 1
            for period in range(1, min(MAX_PERIOD, (total - at) // 2) + 1):
                count = 1
                pattern = keys[at:at + period]
                while keys[at + count * period:at + (count + 1) * period] == pattern:
                    count += 1
                if count > 1 and period * count > best * times:
                    best, times = period, count
            end = at + best * times
            if times > 1 and best > 1 and isinstance(entries[at], Layer) and end < total \
                    and keys[end] == keys[at]:
                # (relu -> A)*2 -> relu reads better as relu -> (A -> relu)*2: a block first
                folded.append(entries[at])
                at += 1
                continue
            if times > 1:
                body = entries[at:at + best]
                inner = self._fold(body) if best > 1 else tuple(body)
                folded.append(Repeat(inner, times))
                self._key(folded[-1])
                at += best * times
            else:
                folded.append(entries[at])
                at += 1
        return tuple(folded)

    def _key(self, entry: Entry) -> str:
        """The entry's text with every block written out (memoised: it identifies it)."""
        known = self.keys.get(id(entry))
        if known is None:
            known = self._render(entry, fragments=False)
            self.keys[id(entry)] = known
        return known

    # -- fragments -------------------------------------------------------------------------

    def _count(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if isinstance(entry, Repeat):
                self._count(entry.body)
            elif isinstance(entry, Compound):
                key = self._key(entry)
                self.uses[key] = self.uses.get(key, 0) + 1
                for part in entry.parts:
                    self._count(part)

    def _define(self, entry: Entry) -> None:
        """Define the fragments of ``entry``, inner ones first."""
        if isinstance(entry, Repeat):
            for item in entry.body:
                self._define(item)
            return
        if not isinstance(entry, Compound):
            return
        for part in entry.parts:
            for item in part:
                self._define(item)
        key = self._key(entry)
        if key in self.names or (self.uses[key] < 2 and len(key) <= FRAGMENT_CHARS):
            return
        name = self._fresh(entry.block)
        self.names[key] = name
        prefix = f"let {name} = "
        text = self._block_text(entry, True)
        if len(prefix) + len(text) > WIDTH and len(entry.parts) > 1:
            text = self._block_text(entry, True, indent=len(prefix))
        self.definitions.append(prefix + text)

    def _fresh(self, block: Block) -> str:
        """A fragment name from the block's form and output channels, unique in the file."""
        form = {"res": "res", "branches": "cat", "split": "split", "gate": "gate"}[block.form]
        if block.form == "gate":
            head = block.parts[0][0] if block.parts[0] else None
            if isinstance(head, Layer) and head.step.kind == "gap":
                form = "se"
        base = f"{form}{block.output.c}"
        before, after = block.input, block.output
        if (after.h, after.w) != (before.h, before.w):
            base += "_down" if after.h * after.w < before.h * before.w else "_up"
        name, number = base, 1
        while name in self.taken:
            number += 1
            name = f"{base}_{number}"
        self.taken.add(name)
        return name

    # -- text ------------------------------------------------------------------------------

    def _text(self, entry: Entry) -> str:
        return self._render(entry, fragments=True)

    def _render(self, entry: Entry, fragments: bool) -> str:
        if isinstance(entry, Layer):
            return layer_text(self.program, entry.step)
        if isinstance(entry, Repeat):
            body = self._sequence(entry.body, fragments)
            single = len(entry.body) == 1 and not isinstance(entry.body[0], Repeat)
            return f"{body}*{entry.count}" if single else f"({body})*{entry.count}"
        if fragments:
            name = self.names.get(self._key(entry))
            if name is not None:
                return f"${name}"
        return self._block_text(entry, fragments)

    def _sequence(self, entries: Sequence[Entry], fragments: bool) -> str:
        if not entries:
            return "id"
        return " -> ".join(self._render(entry, fragments) for entry in entries)

    def _block_text(self, entry: Compound, fragments: bool, indent: int | None = None) -> str:
        opener = {"res": "res[", "branches": "[", "split": "split[", "gate": "gate["}[
            entry.block.form]
        parts = [self._sequence(part, fragments) for part in entry.parts]
        if indent is None:
            return f"{opener}{' | '.join(parts)}]"
        gap = "\n" + " " * (indent + len(opener) - 2) + "| "
        return f"{opener}{gap.join(parts)}]"

    def _arrows(self, texts: list[str]) -> list[str]:
        """``texts`` joined by arrows on lines starting '    -> ', wrapped near WIDTH."""
        lines: list[str] = []
        current = ""
        for text in texts:
            if current and len(current) + 4 + len(text) > WIDTH:
                lines.append(current)
                current = ""
            current = f"{current} -> {text}" if current else f"    -> {text}"
        if current:
            lines.append(current)
        return lines


def _first(entry: Entry) -> Step:
    """The first step, in execution order, of ``entry``."""
    if isinstance(entry, Layer):
        return entry.step
    if isinstance(entry, Repeat):
        return _first(entry.body[0])
    return entry.block.first


def _input(entry: Entry) -> Shape:
    if isinstance(entry, Layer):
        return entry.step.input
    if isinstance(entry, Repeat):
        return _input(entry.body[0])
    return entry.block.input


def _output(entry: Entry) -> Shape:
    if isinstance(entry, Layer):
        return entry.step.output
    if isinstance(entry, Repeat):
        return _output(entry.body[-1])
    return entry.block.output


def _stages(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Top-level items grouped into stages: a stage starts at an item that changes the map's
    HxW once the current stage has an item that keeps it."""
    stages: list[list[Entry]] = []
    keeps = False
    for entry in entries:
        before, after = _input(entry), _output(entry)
        changes = (before.h, before.w) != (after.h, after.w)
        if not stages or (changes and keeps):
            stages.append([])
            keeps = False
        stages[-1].append(entry)
        keeps = keeps or not changes
    return stages
