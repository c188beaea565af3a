"""Resolved networks: layers with concrete shapes, arranged as an execution tree.

This is what shape inference (:mod:`convcost.shapes`) produces and what the cost model
(:mod:`convcost.costs`), the memory model (:mod:`convcost.memory`) and the NumPy executor
(:mod:`convcost.kernels`) consume. Shapes are per sample and channels-last: ``(H, W, C)``.

Values here and in the syntax tree are immutable ``NamedTuple`` classes rather than frozen
dataclasses: they are created by the thousand per model and defined at every start-up, and a
NamedTuple is about twice as cheap for both (see ``benchmarks/analyze_speed.py``).
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Union


class Shape(NamedTuple):
    """A per-sample activation shape, channels last."""

    h: int
    w: int
    c: int

    @property
    def elements(self) -> int:
        """Number of elements in one sample."""
        return self.h * self.w * self.c

    def as_list(self) -> list[int]:
        return [self.h, self.w, self.c]

    def __str__(self) -> str:
        return f"{self.h}x{self.w}x{self.c}"


#: Layer kinds that change nothing and allocate nothing (they alias their input).
ALIAS_KINDS = frozenset({"id", "dropout"})
#: Element-wise activations: one op per element, no params.
ACTIVATION_KINDS = frozenset({"relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "softmax"})
#: Every kind a :class:`Layer` may have.
LAYER_KINDS = frozenset(
    {"conv", "deconv", "fc", "maxpool", "avgpool", "gap", "up", "bn", "concat", "add"}
    | ALIAS_KINDS
    | ACTIVATION_KINDS
)


class Layer(NamedTuple):
    """One executable step with its resolved geometry.

    ``padding`` is ``(top, bottom, left, right)`` in pixels. For ``conv`` and pools it is the
    zero (or -inf) padding added to the input. For ``deconv`` it is the number of rows/columns
    cropped from the full transposed-convolution output, ``(I-1)*s + d*(K-1) + 1``, at each
    side; a negative value means that many zero rows/columns are appended instead (``same``
    with ``stride > kernel``). ``pad_mode`` records how the padding was written: ``"same"``
    (TensorFlow semantics; average pools exclude the padding from the divisor) or
    ``"explicit"`` (PyTorch semantics; average pools include it, ``count_include_pad=True``).
    ``operands`` holds the shapes of the inputs of ``concat`` and ``add``.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the domain name
    path: str
    kind: str
    text: str
    input: Shape
    output: Shape
    kernel_hw: tuple[int, int] = (1, 1)
    stride_hw: tuple[int, int] = (1, 1)
    dilation_hw: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    pad_mode: str = "explicit"
    groups: int = 1
    bias: bool = False
    ceil: bool = False
    factor: int = 1
    operands: tuple[Shape, ...] = ()
    line: int = 0
    column: int = 0


class Branches(NamedTuple):
    """Parallel sub-chains from one input, concatenated along channels by ``concat``."""

    branches: tuple[tuple[Node, ...], ...]
    concat: Layer


class Residual(NamedTuple):
    """``body`` plus ``shortcut`` (empty tuple: identity), summed by ``add``."""

    body: tuple[Node, ...]
    shortcut: tuple[Node, ...]
    add: Layer


Node = Union[Layer, Branches, Residual]


class Network(NamedTuple):
    """A resolved model: its input shape and the execution tree."""

    name: str
    input: Shape
    nodes: tuple[Node, ...]

    @property
    def output(self) -> Shape:
        last = self.nodes[-1]
        if isinstance(last, Layer):
            return last.output
        if isinstance(last, Branches):
            return last.concat.output
        return last.add.output

    def layers(self) -> Iterator[Layer]:
        """All layers in execution order (branch by branch, body before shortcut)."""
        return iter_layers(self.nodes)


def iter_layers(nodes: tuple[Node, ...]) -> Iterator[Layer]:
    """Layers of ``nodes`` in execution order, including ``concat`` and ``add`` steps."""
    for node in nodes:
        if isinstance(node, Layer):
            yield node
        elif isinstance(node, Branches):
            for branch in node.branches:
                yield from iter_layers(branch)
            yield node.concat
        else:
            yield from iter_layers(node.body)
            yield from iter_layers(node.shortcut)
            yield node.add
