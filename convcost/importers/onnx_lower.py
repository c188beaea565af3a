"""Lowering ONNX nodes to program steps: the same op kinds and Step fields as spec programs.

An activation tensor is an :class:`Act`: a program value, its per-sample shape (H, W, C) and
its layout in the ONNX graph (``nchw``; ``nhwc`` after a Transpose to channels-last, as
ConvNeXt's linear layers use; ``flat`` after Flatten; ``grouped``/``grouped_t`` inside a
channel shuffle). Layout changes (Transpose, Flatten, Reshape) are free and emit no step, as
in a spec. Everything else is a constant :class:`Tensor` (weights: dims only).
"""

from __future__ import annotations

from typing import Any, Union

from convcost.errors import OnnxError, Source
from convcost.importers import onnx_views  # noqa: F401  (registers its ops in OPS)
from convcost.importers.onnx_fold import FoldError, fold, reshape_dims, slice_args, slice_range
from convcost.importers.onnx_graph import Act, Graph, Node, Tensor
from convcost.importers.onnx_ops import OPS
from convcost.lang.vocab import MAX_SIZE
from convcost.model.program import Program, Shape, Step

Item = Union[Act, Tensor]

#: Ops folded when all their inputs are constants.
FOLDED_OPS = frozenset({"Identity", "Dropout", "Constant", "Shape", "Size", "Add", "Sub", "Mul",
                        "Div", "Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten",
                        "Transpose", "Gather", "Concat", "Slice", "ConstantOfShape", "Range"})


class Lowering:
    """The state of lowering one graph: values by tensor name, steps emitted so far."""

    def __init__(self, graph: Graph, nodes: tuple[Node, ...], source: str, batch: int) -> None:
        self.graph = graph
        self.source = source
        self.batch = batch
        self.items: dict[str, Item] = dict(graph.constants)
        self.steps: list[Step] = []
        self.position: dict[int, int] = {}  # value id -> position of the step writing it
        self.readers: dict[str, int] = {}
        for node in nodes:
            for name in node.inputs:
                self.readers[name] = self.readers.get(name, 0) + 1
        self.values = 1
        self.node: Node | None = None

    # -- errors and lookups -------------------------------------------------------------
    def error(self, message: str, node: Node | None = None) -> OnnxError:
        node = node or self.node
        where = f"node '{node.name}' ({node.op}): " if node is not None else ""
        return OnnxError(where + message, self.source)

    def item(self, name: str) -> Item:
        found = self.items.get(name)
        if found is None:
            raise self.error(f"input '{name}' is not produced by any earlier node")
        return found

    def act(self, index: int = 0) -> Act:
        assert self.node is not None
        if index >= len(self.node.inputs) or not self.node.inputs[index]:
            raise self.error(f"input {index + 1} is missing")
        found = self.item(self.node.inputs[index])
        if not isinstance(found, Act):
            raise self.error(f"input {index + 1} ('{self.node.inputs[index]}') is a constant; "
                             f"expected an activation")
        return found

    def const(self, index: int, what: str = "") -> Tensor | None:
        """Input ``index`` as a constant, ``None`` when omitted."""
        assert self.node is not None
        if index >= len(self.node.inputs) or not self.node.inputs[index]:
            return None
        found = self.item(self.node.inputs[index])
        if isinstance(found, Act):
            raise self.error(f"{what or f'input {index + 1}'} ('{self.node.inputs[index]}') is "
                             f"computed in the graph; only constant (initializer) "
                             f"{what or 'inputs'} are supported")
        return found

    def attr(self, name: str, default: Any = None) -> Any:
        assert self.node is not None
        value = self.node.attrs.get(name)
        return default if value is None else value

    def dims_of(self, act: Act) -> tuple[int, ...]:
        """The ONNX dims of an activation (batch first), by layout."""
        h, w, c = act.shape
        layout = act.layout
        if layout == "nchw":
            return (self.batch, c, h, w)
        if layout == "nhwc":
            return (self.batch, h, w, c)
        if layout == "grouped":
            return (self.batch, act.groups, c // act.groups, h, w)
        if layout == "grouped_t":
            return (self.batch, c // act.groups, act.groups, h, w)
        return (self.batch, act.shape.elements)

    # -- emitting ------------------------------------------------------------------------
    def emit(self, kind: str, text: str, inputs: list[Act], output: Shape,
             **fields: Any) -> int:
        """Append a step reading ``inputs`` and return the new value id."""
        assert self.node is not None
        value = self.values
        self.values += 1
        step = Step(index=len(self.steps) + 1, path=self.node.name, kind=kind, text=text,
                    input=inputs[0].shape, output=output,
                    inputs=tuple(act.value for act in inputs),
                    out=value, operands=tuple(act.shape for act in inputs), **fields)
        self.position[value] = len(self.steps)
        self.steps.append(step)
        return value

    def producer(self, act: Act) -> Step | None:
        position = self.position.get(act.value)
        return None if position is None else self.steps[position]

    def replace(self, act: Act, **fields: Any) -> None:
        """Change the step that wrote ``act`` (bias folding, SiLU fusion)."""
        position = self.position[act.value]
        self.steps[position] = self.steps[position]._replace(**fields)

    def single_reader(self, index: int) -> bool:
        assert self.node is not None
        return self.readers.get(self.node.inputs[index], 0) == 1

    # -- the walk ------------------------------------------------------------------------
    def run(self, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            self.node = node
            args = [self.items.get(name) if name else None for name in node.inputs]
            for name, found in zip(node.inputs, args):
                if name and found is None:
                    raise self.error(f"input '{name}' is not produced by any earlier node")
            if node.op in ("Shape", "Size") or (
                    node.op in FOLDED_OPS and not any(isinstance(arg, Act) for arg in args)):
                outputs: list[Item] = list(self._fold(node, args))
            else:
                handler = OPS.get(node.op)
                if handler is None:  # a shape-arithmetic op applied to an activation
                    raise self.error("this op is supported on constants (shape arithmetic) "
                                     "only, not on an activation")
                try:
                    result = handler(self)
                except (ValueError, TypeError, ArithmeticError, IndexError, KeyError,
                        AttributeError) as error:  # hostile attributes: never a traceback
                    raise self.error(f"malformed node ({type(error).__name__}: "
                                     f"{error})") from None
                outputs = [result] if not isinstance(result, list) else list(result)
            for name, value in zip(node.outputs, outputs):
                if name:
                    self.items[name] = value

    def _fold(self, node: Node, args: list[Item | None]) -> list[Tensor]:
        def shape_of(index: int) -> Tensor:
            found = args[index] if index < len(args) else None
            if isinstance(found, Act):
                dims = self.dims_of(found)
                return Tensor((len(dims),), dims)
            if found is None:
                raise FoldError("Shape of a missing input")
            return Tensor((len(found.dims),), found.dims)

        try:
            return fold(node, [arg if isinstance(arg, Tensor) else None for arg in args],
                        shape_of)
        except (FoldError, ArithmeticError, IndexError, TypeError, ValueError) as error:
            raise self.error(f"cannot fold this constant op: {error}") from None

    def reshape_target(self, act: Act) -> tuple[int, ...]:
        """The dims a Reshape of ``act`` produces."""
        target = self.const(1, "the shape")
        if target is None or target.values is None:
            raise self.error("the target shape is not known")
        try:
            return reshape_dims(self.dims_of(act), [int(v) for v in target.values],
                                bool(self.attr("allowzero", 0)))
        except FoldError as error:
            raise self.error(f"{error} (does the graph hard-code another input size? "
                             f"analyse it at its own size, without --size)") from None

    def slices(self, act: Act) -> list[tuple[int, int, int, int]]:
        assert self.node is not None
        args = [self.items.get(name) if name else None for name in self.node.inputs]
        try:
            return slice_args(self.node, [a if isinstance(a, Tensor) else None for a in args],
                              len(self.dims_of(act)))
        except FoldError as error:
            raise self.error(str(error)) from None

    def clamp(self, start: int, end: int, step: int, size: int) -> tuple[int, int]:
        try:
            return slice_range(start, end, step, size)
        except FoldError as error:
            raise self.error(str(error)) from None


def entry_act(graph: Graph, source: str, size: tuple[int, int] | None,
              batch: int | None) -> tuple[Act, int]:
    """The graph input as an activation (NCHW -> HxWxC) and the batch used for folding."""
    dims = graph.input_dims
    name = graph.input_name

    def known(index: int, what: str) -> int:
        value = dims[index]
        if isinstance(value, int) and not 1 <= value <= MAX_SIZE:
            raise OnnxError(f"input '{name}' has a {what} of {value:,}; sizes must be between 1 "
                            f"and {MAX_SIZE:,}", source)
        if not isinstance(value, int):
            label = f"'{value}'" if value else "unknown"
            fix = {"height": "give it with --size HxW", "width": "give it with --size HxW"}.get(
                what, "no option can give it: export the model with a fixed one")
            raise OnnxError(f"input '{name}' has a dynamic {what} ({label}); {fix}", source)
        return value

    first = dims[0] if dims else None
    folding_batch = first if isinstance(first, int) else (batch or 1)
    if len(dims) == 4:
        channels = known(1, "channel count")
        if size is not None:
            return Act(0, Shape(size[0], size[1], channels)), folding_batch
        return Act(0, Shape(known(2, "height"), known(3, "width"), channels)), folding_batch
    if len(dims) == 2:
        return Act(0, Shape(1, 1, known(1, "feature count")), "flat"), folding_batch
    raise OnnxError(f"input '{name}' has {len(dims)} dims; expected NCHW images (4 dims) or "
                    f"N x features (2 dims)", source)


def lower(graph: Graph, nodes: tuple[Node, ...], name: str, source: str,
          size: tuple[int, int] | None, batch: int | None) -> Program:
    """The :class:`Program` of ``graph`` (its nodes after pattern fusion)."""
    _check_ops(nodes, source)
    entry, folding_batch = entry_act(graph, source, size, batch)
    lowering = Lowering(graph, nodes, source, folding_batch)
    lowering.items[graph.input_name] = entry
    lowering.run(nodes)
    result = lowering.items.get(graph.outputs[0])
    if not isinstance(result, Act):
        raise OnnxError(f"the graph output '{graph.outputs[0]}' is not computed from the "
                        f"input", source)
    if not lowering.steps:
        raise OnnxError("the graph has no layers to analyse", source)
    for step in lowering.steps:  # the same bounds as a spec's sizes and channels
        if max(step.output) > MAX_SIZE:
            raise OnnxError(f"node '{step.path}' ({step.kind}) gives a {step.output} output; "
                            f"sizes and channels must be at most {MAX_SIZE:,}", source)
    return Program(name, entry.shape, tuple(lowering.steps), result.value,
                   Source(source, ""), 0)


def _check_ops(nodes: tuple[Node, ...], source: str) -> None:
    """Refuse a graph with an op outside the supported list, naming it and its count."""
    counts: dict[str, int] = {}
    first: dict[str, Node] = {}
    for node in nodes:
        if node.op not in OPS and node.op not in FOLDED_OPS:
            counts[node.op] = counts.get(node.op, 0) + 1
            first.setdefault(node.op, node)
    if not counts:
        return
    op, count = next(iter(counts.items()))
    others = [f"{other} ({number})" for other, number in counts.items() if other != op]
    hint = " (only the exact GELU pattern x*0.5*(1+erf(x/sqrt(2))) is recognised)" \
        if op == "Erf" else ""
    also = f"; other unsupported ops: {', '.join(others)}" if others else ""
    raise OnnxError(f"unsupported op {op}{hint}: node '{first[op].name}' is one of {count} "
                    f"{op} node{'s' if count != 1 else ''} in the graph{also}", source)

