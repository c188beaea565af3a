"""The program: every model, whatever its front end, as a flat list of steps.

A :class:`Program` is a DAG in execution order. Value ``0`` is the model's input; every
:class:`Step` reads one or more values (``inputs``) and writes one new value (``out``). Branch
concatenations, residual adds and gate multiplies are steps with several inputs. The cost
model, the memory model, the reports, the benchmark's memory estimate and the NumPy executor
all walk this one list; nothing walks a tree.

Shapes are per sample and channels-last: ``(H, W, C)``. Values here are immutable
``NamedTuple`` classes rather than frozen dataclasses: they are created by the thousand per
model, and a NamedTuple is about twice as cheap to build (see ``benchmarks/analyze_speed.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from convcost.errors import Source


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


class Step(NamedTuple):
    """One operation of a program, with its resolved geometry.

    ``kind`` is an op kind of :mod:`convcost.lang.vocab`. ``inputs`` are the value ids read
    (``operands`` their shapes, ``input`` the first one's) and ``out`` the value id written
    (shape ``output``). ``path`` locates the step in the model as written (``3.b2.1``,
    ``7.body.2``, ``4.add``) and ``line``/``column`` where its text starts in the source.

    ``padding`` is ``(top, bottom, left, right)`` in pixels. For ``conv`` and pools it is the
    zero (or -inf) padding added to the input. For ``deconv`` it is the number of rows/columns
    cropped from the full transposed-convolution output, ``(I-1)*s + d*(K-1) + 1``, at each
    side; a negative value means that many zero rows/columns are appended instead (``same``
    with ``stride > kernel``). ``pad_mode`` records how the padding was written: ``"same"``
    (TensorFlow semantics; average pools exclude the padding from the divisor) or
    ``"explicit"`` (PyTorch semantics; average pools include it, ``count_include_pad=True``).
    ``groups`` is the convolution groups, the group count of ``gn`` and ``shuffle``;
    ``channels`` the ``[start, stop)`` channel range a ``slice`` takes; ``affine`` whether a
    norm has a learnable scale and shift.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the domain name
    path: str
    kind: str
    text: str
    input: Shape
    output: Shape
    inputs: tuple[int, ...] = (0,)
    out: int = 1
    operands: tuple[Shape, ...] = ()
    kernel_hw: tuple[int, int] = (1, 1)
    stride_hw: tuple[int, int] = (1, 1)
    dilation_hw: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    pad_mode: str = "explicit"
    groups: int = 1
    bias: bool = False
    ceil: bool = False
    factor: int = 1
    channels: tuple[int, int] = (0, 0)
    affine: bool = True
    line: int = 0
    column: int = 0


class Program(NamedTuple):
    """A resolved model: its input, its steps in execution order, and the value it returns.

    ``source`` and ``line`` say where the model was written (for messages that quote it).
    """

    name: str
    input: Shape
    steps: tuple[Step, ...]
    result: int
    source: Source | None = None
    line: int = 0

    @property
    def output(self) -> Shape:
        """The shape of the value the program returns."""
        if not self.steps:
            return self.input
        for step in reversed(self.steps):
            if step.out == self.result:
                return step.output
        return self.input

    def readers(self) -> dict[int, list[int]]:
        """Value id -> positions (0-based) of the steps that read it, in order."""
        found: dict[int, list[int]] = {}
        for position, step in enumerate(self.steps):
            for value in step.inputs:
                found.setdefault(value, []).append(position)
        return found
