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

from convcost.errors import ConvcostError, InternalError
from convcost.importers.layers import layer_text
from convcost.importers.structure import Block, Layer, Node, recover, structure_error
from convcost.model.program import Program, Shape, Step

#: Longest run of items tried as the period of a repeat (bounds the folding time).
MAX_PERIOD = 24
#: Blocks whose text is longer than this become fragments even when used once.
FRAGMENT_CHARS = 60
#: Blocks this short (``[id]``, ``gate[sigmoid]``) stay inline however often they are used.
SHORT_CHARS = 20
#: Lines are wrapped near this width.
WIDTH = 100
_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
#: How each block form opens.
_OPENERS = {"res": "res[", "branches": "[", "split": "split[", "gate": "gate["}


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
    writer = SpecWriter()
    writer.add(program, name)
    return writer.text(header)


def round_trip_problems(programs: Sequence[Program], text: str) -> list[ConvcostError]:
    """Errors for every model of ``text`` (written from ``programs``, in order) that does not
    re-analyse to its program's MACs, params, buffers, other ops and output shape."""
    from convcost.analysis import analyze_text
    from convcost.cost.report import build_report

    again = analyze_text(text, source_name="<written spec>")
    problems: list[ConvcostError] = list(again.errors)
    for program, model in zip(programs, again.models):
        before = build_report(program, source="", spec="")
        after = model.report
        fields = ("macs", "params", "buffers", "other_ops")
        differ = [f"{field} {getattr(before.totals, field):,} != {getattr(after.totals, field):,}"
                  for field in fields
                  if getattr(before.totals, field) != getattr(after.totals, field)]
        if before.output != after.output:
            differ.append(f"output {before.output} != {after.output}")
        if differ:
            problems.append(InternalError(f"the spec written for {program.name!r} does not "
                                          f"re-analyse to its totals: {'; '.join(differ)}",
                                          "<written spec>", model.report.line))
    if len(again.models) != len(programs) and not again.errors:
        problems.append(InternalError("the written spec lost a model", "<written spec>"))
    return problems


def model_name(name: str) -> str:
    """``name`` made a valid model name (letters, digits, ``_``, ``-``, ``.``)."""
    cleaned = _NAME.sub("_", name)
    return cleaned or "model"


def _comment(text: str) -> str:
    """``text`` safe inside a ``#`` comment line (no line breaks or control characters)."""
    return "".join(char if char.isprintable() else "?" for char in text)


class SpecWriter:
    """Several programs written into one spec file, sharing their fragments."""

    __slots__ = ("program", "keys", "uses", "names", "definitions", "taken", "models",
                 "model_names")

    def __init__(self) -> None:
        self.program: Program | None = None
        self.keys: dict[int, tuple[Entry, str]] = {}  # id(entry) -> entry, text without fragments
        self.uses: dict[str, int] = {}  # block text -> times the current model writes it
        self.names: dict[str, str] = {}  # block text -> fragment name
        self.definitions: list[str] = []
        self.taken: set[str] = set()
        self.models: list[str] = []
        self.model_names: set[str] = set()

    def add(self, program: Program, name: str | None = None) -> None:
        """Write ``program`` (as model ``name``, default its own); raises
        :class:`~convcost.errors.SpecError` as :func:`program_to_spec` does, leaving the file
        as it was (every layer is written while folding, before any fragment is defined)."""
        self.program, self.keys, self.uses = program, {}, {}
        try:
            try:
                nodes = recover(program)
            except RecursionError:  # a safety net: recover refuses deep nesting itself
                raise structure_error(program, None, "blocks nest too deeply") from None
            entries = self._fold(nodes)
            self._count(entries)
            for entry in entries:
                self._define(entry)
            shape = program.input
            lines = [f"{self._model_name(name if name is not None else program.name)}: "
                     f"{shape.h}x{shape.w}x{shape.c}"]
            for stage in _stages(entries):
                first, out = _first(stage[0]), _output(stage[-1])
                lines.append(f"    # {out}, from node {_comment(first.path)}")
                lines += self._arrows([self._text(entry) for entry in stage])
            if not entries:  # the input is the output: a chain needs one layer
                lines.append("    -> id")
        finally:
            self.keys = {}
        self.models.append("\n".join(lines))

    def text(self, header: Sequence[str] = ()) -> str:
        """The spec file: ``header`` comment lines, the fragments, then the models."""
        sections = ["\n".join(f"# {_comment(line)}" for line in header),
                    "\n".join(self.definitions), *self.models]
        return "\n\n".join(section for section in sections if section) + "\n"

    def _model_name(self, name: str) -> str:
        """A valid model name, unique in the file (``name_2`` for a second ``name``)."""
        base = model_name(name)
        unique, number = base, 1
        while unique in self.model_names:
            number += 1
            unique = f"{base}_{number}"
        self.model_names.add(unique)
        return unique

    def _current(self) -> Program:
        assert self.program is not None
        return self.program

    # -- folding ---------------------------------------------------------------------------

    def _fold(self, nodes: Sequence[Node] | Sequence[Entry]) -> tuple[Entry, ...]:
        """``nodes`` with their blocks' parts folded, then runs of identical items folded."""
        entries: list[Entry] = []
        for node in nodes:
            if isinstance(node, Block):
                node = Compound(node, tuple(self._fold(part) for part in node.parts))
            entries.append(node)
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
            known = (entry, self._render(entry, fragments=False))
            self.keys[id(entry)] = known  # holds the entry: its id is never reused meanwhile
        return known[1]

    # -- fragments -------------------------------------------------------------------------

    def _count(self, entries: Sequence[Entry], times: int = 1) -> None:
        """How many times each block runs (a block in ``*N`` runs N times)."""
        for entry in entries:
            if isinstance(entry, Repeat):
                self._count(entry.body, times * entry.count)
            elif isinstance(entry, Compound):
                key = self._key(entry)
                self.uses[key] = self.uses.get(key, 0) + times
                for part in entry.parts:
                    self._count(part, times)

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
        if key in self.names or len(key) <= SHORT_CHARS or \
                (self.uses[key] < 2 and len(key) <= FRAGMENT_CHARS):
            return
        name = self._fresh(entry.block)
        self.names[key] = name
        prefix = f"let {name} = "
        text = self._block_text(entry, True)
        if len(prefix) + len(text) > WIDTH and sum(1 for part in entry.parts if part) > 1:
            text = self._block_text(entry, True, indent=len(prefix))
        opener = len(prefix) + len(_OPENERS[entry.block.form])
        self.definitions.append(_wrap(prefix + text, opener))

    def _fresh(self, block: Block) -> str:
        """A fragment name from the block's form and output channels, unique in the file."""
        form = {"res": "res", "branches": "cat", "split": "split", "gate": "gate"}[block.form]
        if block.form == "gate":
            head = block.parts[0][0] if block.parts[0] else None
            if isinstance(head, Layer) and head.step.kind == "gap":
                form = "se"
        channels = block.output.c
        if block.form == "branches" and any(not part for part in block.parts):
            # [id | f] keeps its input and appends f's channels (DenseNet): name the growth,
            # the same at every use of the fragment
            form, channels = "dense", block.output.c - block.input.c
        base = f"{form}{channels}"
        before, after = block.input, block.output
        if (after.h, after.w) != (before.h, before.w):
            base += "_down" if after.h * after.w < before.h * before.w else "_up"
        elif block.form == "res" and len(block.parts) == 2:
            base += "_proj"  # a projection shortcut at the same size
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
            return layer_text(self._current(), entry.step)
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
        opener = _OPENERS[entry.block.form]
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


def _wrap(text: str, start: int) -> str:
    """Lines of ``text`` longer than WIDTH broken before arrows; the continuation lines line
    up under the part they continue (``start`` is where the first line's part begins; a
    ``| `` line's part begins after it). Inside brackets a line break needs no marker."""
    lines: list[str] = []
    for number, line in enumerate(text.split("\n")):
        column = start if number == 0 else line.index("| ") + 2
        pieces = line.split(" -> ")
        current = pieces[0]
        for piece in pieces[1:]:
            if len(current) + 4 + len(piece) > WIDTH:
                lines.append(current)
                current = " " * column + "-> " + piece
            else:
                current += " -> " + piece
        lines.append(current)
    return "\n".join(lines)


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
