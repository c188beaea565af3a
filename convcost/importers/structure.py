"""Recovering the nested forms of the chain language from a program's flat DAG.

A :class:`~convcost.model.program.Program` is a DAG of steps in execution order. The chain
language writes exactly the series-parallel DAGs whose merges are branch concatenations
(``[A | B]``, ``split[A | B]``), residual adds (``res[A]``, ``res[A | S]``) and gate
multiplies (``gate[A]``). :func:`recover` finds that nesting from the steps, their inputs and
outputs alone, with the post-dominator tree of the values: the block that starts where a value
is read by several steps ends at the nearest value every path from those readers passes
through, and that value must be written by a merge step.

DenseNet's concatenations of all earlier features (``cat(x, n1, ..., nk)`` next to an earlier
``cat(x, n1, ..., nk-1)``) are first rewritten as ``cat(previous cat, nk)``: the same
channels, MACs, params, ops and traffic, written ``[id | ...]``. Only peak memory may differ.
"""

from __future__ import annotations

from typing import NamedTuple, Union

from convcost.errors import SpecError
from convcost.lang.vocab import MERGE_KINDS
from convcost.model.program import Program, Shape, Step

#: Deepest nesting of blocks recovered: the language's limit of nested brackets (written
#: specs stay readable, and the writer's recursion stays far from Python's limit).
MAX_NESTING = 64


class Layer(NamedTuple):
    """One single-input step, written as one layer."""

    step: Step


class Block(NamedTuple):
    """A merge and the sequences that feed it from one input value.

    ``form`` is ``branches``, ``split``, ``res`` or ``gate``; ``parts`` the branches (for a
    split without their ``slice`` steps), the body and shortcut of ``res``, or the gate's body
    (an empty part is the identity). ``first`` is the block's first step in execution order.
    """

    form: str
    parts: tuple[tuple[Node, ...], ...]
    input: Shape
    merge: Step
    first: Step

    @property
    def output(self) -> Shape:
        return self.merge.output


Node = Union[Layer, Block]


def structure_error(program: Program, step: Step | None, message: str) -> SpecError:
    """A located error for a graph the chain language cannot write, naming ``step``'s node."""
    source = program.source.name if program.source is not None else program.name
    where = f"node '{step.path}' ({step.kind}): " if step is not None else ""
    return SpecError(f"cannot write {program.name!r} as a chain: {where}{message}", source,
                     step.line if step is not None else 0,
                     step.column if step is not None else 0)


def recover(program: Program) -> tuple[Node, ...]:
    """The program's steps as a nested sequence of layers and blocks.

    Raises :class:`SpecError` naming the node where the graph stops being series-parallel
    (or where a merge cannot be written as a branch group, residual block or gate).
    """
    return _Recovery(program).run()


class _Recovery:
    __slots__ = ("program", "steps", "producer", "readers", "ipdom", "depth", "visited",
                 "enter", "leave", "nesting")

    def __init__(self, program: Program) -> None:
        self.program = program
        self.steps: tuple[Step, ...] = ()
        self.producer: dict[int, Step] = {}
        self.readers: dict[int, list[Step]] = {}
        self.ipdom: dict[int, int] = {}
        self.depth: dict[int, int] = {}
        # Entry and exit times of a walk of the post-dominator tree: ancestry in O(1).
        self.enter: dict[int, int] = {}
        self.leave: dict[int, int] = {}
        self.visited = 0
        self.nesting = 0
        self._index(_dense_concats(program.steps))

    def _index(self, steps: tuple[Step, ...]) -> None:
        """Take ``steps`` as the graph: producers, readers and post-dominators."""
        self.steps = steps
        self.producer = {step.out: step for step in steps}
        self.readers = {}
        for step in steps:
            for value in dict.fromkeys(step.inputs):
                self.readers.setdefault(value, []).append(step)
        self.ipdom, self.depth, self.enter, self.leave = {}, {}, {}, {}
        self._post_dominators()

    def fail(self, step: Step | None, message: str) -> SpecError:
        return structure_error(self.program, step, message)

    def run(self) -> tuple[Node, ...]:
        nested = self._nested_concat()
        while nested is not None:
            self._index(nested)
            nested = self._nested_concat()
        nodes = self._sequence(0, self.program.result, None)
        if self.visited != len(self.steps):
            raise self.fail(None, f"only {self.visited} of {len(self.steps)} steps form a "
                                  f"chain from the input to the output")
        return tuple(nodes)

    def _nested_concat(self) -> tuple[Step, ...] | None:
        """The steps with one flattened concatenation nested again, or None if there is none.

        Exporters flatten ``cat(a, cat(b, c), d)`` into ``cat(a, b, c, d)`` (Inception-v3's
        last blocks): a value whose readers lead into several consecutive inputs of one
        concat, and into nothing else, gets a concat of those inputs of its own, so that it
        is a branch group inside the branch group. Same channels, MACs, params and ops.
        """
        for value in [*(step.out for step in reversed(self.steps)), 0]:
            readers = self.readers.get(value, [])
            merge = self.producer.get(self.ipdom.get(value, -1))
            if len(readers) < 2 or merge is None or merge.kind != "concat" or \
                    len(merge.inputs) < 3:
                continue
            owners: set[int] = set()
            for reader in readers:
                owner = [number for number, operand in enumerate(merge.inputs)
                         if self._dominated(reader.out, operand)]
                if len(owner) != 1:
                    break
                owners.add(owner[0])
            else:
                first, last = min(owners), max(owners)
                if len(owners) < 2 or len(owners) == len(merge.inputs) or \
                        last - first + 1 != len(owners):
                    continue
                shapes = merge.operands[first:last + 1]
                inner = merge._replace(
                    inputs=merge.inputs[first:last + 1], operands=shapes,
                    output=Shape(shapes[0].h, shapes[0].w, sum(shape.c for shape in shapes)),
                    out=max(self.producer) + 1)
                outer = merge._replace(
                    inputs=(*merge.inputs[:first], inner.out, *merge.inputs[last + 1:]),
                    operands=(*merge.operands[:first], inner.output,
                              *merge.operands[last + 1:]))
                steps = list(self.steps)
                at = steps.index(merge)
                steps[at:at + 1] = [inner, outer]
                return tuple(steps)
        return None

    def _post_dominators(self) -> None:
        """Immediate post-dominator and depth of every value (the result is the root)."""
        result = self.program.result
        self.depth[result] = 0
        for step in reversed(self.steps):
            self._dominate(step.out, step)
        self._dominate(0, None)
        children: dict[int, list[int]] = {}
        for value, parent in self.ipdom.items():
            children.setdefault(parent, []).append(value)
        clock = 0
        stack: list[tuple[int, bool]] = [(result, False)]
        while stack:  # iterative: the tree is as deep as the longest chain
            value, done = stack.pop()
            clock += 1
            if done:
                self.leave[value] = clock
                continue
            self.enter[value] = clock
            stack.append((value, True))
            stack.extend((child, False) for child in children.get(value, ()))

    def _dominate(self, value: int, step: Step | None) -> None:
        if value == self.program.result:
            return
        outs = [reader.out for reader in self.readers.get(value, ())]
        if not outs or any(out not in self.depth for out in outs):
            # Unread, or read only by steps that never reach the result.
            named = step if step is not None else self.steps[0] if self.steps else None
            raise self.fail(named, "its output is never used on the way to the model's "
                                   "output (a chain has one output)")
        join = outs[0]
        for out in outs[1:]:
            join = self._lca(join, out)
        self.ipdom[value] = join
        self.depth[value] = self.depth[join] + 1

    def _lca(self, a: int, b: int) -> int:
        while a != b:
            if self.depth[a] >= self.depth[b]:
                a = self.ipdom[a]
            else:
                b = self.ipdom[b]
        return a

    def _dominated(self, value: int, by: int) -> bool:
        """Whether every path from ``value`` to the output passes ``by`` (or is it)."""
        return self.enter[by] <= self.enter[value] <= self.leave[by]

    def _sequence(self, value: int, end: int, first: list[Step] | None) -> list[Node]:
        """The nodes from ``value`` to ``end``; ``first`` restricts the readers of ``value``
        to those of one branch."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.fail(self.producer.get(value), f"blocks nest more than {MAX_NESTING} "
                                                      f"levels deep, the language's limit")
        nodes: list[Node] = []
        while value != end:
            readers = first if first is not None else self.readers.get(value, [])
            first = None
            for reader in readers:
                if not self._dominated(reader.out, end):
                    raise self.fail(reader, "it reads a value that is also used outside "
                                            "its block (the graph is not series-parallel)")
            if len(readers) == 1 and readers[0].kind not in MERGE_KINDS:
                nodes.append(Layer(readers[0]))
                self.visited += 1
                value = readers[0].out
                continue
            join = readers[0].out
            for reader in readers[1:]:
                join = self._lca(join, reader.out)
            merge = self.producer[join]
            nodes.append(self._block(value, readers, merge))
            value = join
        self.nesting -= 1
        return nodes

    def _block(self, value: int, readers: list[Step], merge: Step) -> Block:
        if merge.kind not in MERGE_KINDS:
            raise self.fail(merge, "paths from one value meet here, but only a concat, an add "
                                   "or a multiply can join them")
        if len(set(merge.inputs)) != len(merge.inputs) and \
                any(value != v and merge.inputs.count(v) > 1 for v in merge.inputs):
            raise self.fail(merge, "it reads the same computed value twice")
        groups: dict[int, list[Step]] = {v: [] for v in merge.inputs}
        for reader in readers:
            if reader is merge:
                continue
            owner = [v for v in groups if v != value and self._dominated(reader.out, v)]
            if len(owner) != 1:
                raise self.fail(reader, f"it does not lead into exactly one input of "
                                        f"'{merge.path}'")
            groups[owner[0]].append(reader)
        parts: list[tuple[Node, ...]] = []
        for operand in merge.inputs:
            if operand == value:
                if not any(reader is merge for reader in readers):
                    raise self.fail(merge, "it reads a value from outside its block")
                parts.append(())
            elif not groups[operand]:
                outside = self.producer.get(operand)
                named = f"the output of '{outside.path}'" if outside else "the model's input"
                raise self.fail(merge, f"it reads {named}, which is not inside the block it "
                                       f"closes (the graph is not series-parallel)")
            else:
                parts.append(tuple(self._sequence(value, operand, groups[operand])))
        self.visited += 1
        shape = self.producer[value].output if value else self.program.input
        return self._classify(merge, shape, parts)

    def _classify(self, merge: Step, shape: Shape, parts: list[tuple[Node, ...]]) -> Block:
        steps = [_first_step(part) for part in parts if part]
        first = min(steps, key=lambda step: step.index) if steps else merge
        if merge.kind == "concat":
            split = _split_parts(shape, parts)
            if split is not None:
                return Block("split", split, shape, merge, first)
            return Block("branches", tuple(parts), shape, merge, first)
        if merge.kind == "add":
            if len(parts) != 2 or merge.operands[0] != merge.operands[1]:
                raise self.fail(merge, "only an add of two values of one shape (a residual "
                                       "block) can be written")
            body, shortcut = parts
            if not body or (shortcut and _first_step(shortcut).index < _first_step(body).index):
                body, shortcut = shortcut, body
            pieces = (body,) if not shortcut else (body, shortcut)
            return Block("res", pieces, shape, merge, first)
        # mul: x * g(x)
        if len(parts) != 2 or (parts[0] and parts[1]):
            raise self.fail(merge, "only a multiply of a block's input by a gate computed from "
                                   "it (x * g(x)) can be written")
        gate = parts[0] or parts[1]
        gate_shape = merge.operands[1] if not parts[0] else merge.operands[0]
        if gate_shape not in (shape, Shape(1, 1, shape.c)) or merge.output != shape:
            raise self.fail(merge, f"a gate must end at {shape} or 1x1x{shape.c}, not "
                                   f"{gate_shape}")
        return Block("gate", (gate,), shape, merge, first)


def _first_step(part: tuple[Node, ...]) -> Step:
    node = part[0]
    return node.step if isinstance(node, Layer) else node.first


def _split_parts(shape: Shape, parts: list[tuple[Node, ...]]
                 ) -> tuple[tuple[Node, ...], ...] | None:
    """The parts without their leading ``slice`` steps when they split the channels into
    equal parts in order (``split[...]``), else None."""
    count = len(parts)
    if count < 2 or shape.c % count:
        return None
    width = shape.c // count
    for number, part in enumerate(parts):
        head = part[0] if part else None
        if not isinstance(head, Layer) or head.step.kind != "slice" or \
                head.step.channels != (number * width, (number + 1) * width):
            return None
    return tuple(part[1:] for part in parts)


def _dense_concats(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Concats whose inputs start with all the inputs of an earlier concat read that concat
    instead: ``cat(x, n1, n2)`` after ``c = cat(x, n1)`` becomes ``cat(c, n2)`` (DenseNet)."""
    seen: dict[tuple[int, ...], Step] = {}
    result: list[Step] = []
    for step in steps:
        if step.kind == "concat":
            original = step.inputs
            for length in range(len(original) - 1, 0, -1):
                earlier = seen.get(original[:length])
                if earlier is not None:
                    step = step._replace(inputs=(earlier.out, *original[length:]),
                                         operands=(earlier.output, *step.operands[length:]))
                    break
            seen.setdefault(original, step)
        result.append(step)
    return tuple(result)
