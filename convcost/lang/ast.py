"""Syntax tree of the chain language. Every node keeps the span it was written at."""

from __future__ import annotations

from typing import NamedTuple, Union

from convcost.errors import Source, Span


class InputSpec(NamedTuple):
    """``C`` (``h`` and ``w`` are None: per output position) or ``HxWxC``."""

    h: int | None
    w: int | None
    c: int
    span: Span


class LayerSpec(NamedTuple):
    """One layer as written, options already checked and normalised.

    ``padding`` is ``"same"``, ``"valid"`` or explicit ``(ph, pw)`` pixels per side.
    ``stride_hw`` None means the layer kind's default (1 for convs, the kernel for pools).
    """

    kind: str
    text: str
    span: Span
    kernel_hw: tuple[int, int] = (1, 1)
    out_channels: int | None = None
    stride_hw: tuple[int, int] | None = None
    padding: str | tuple[int, int] = "same"
    dilation_hw: tuple[int, int] = (1, 1)
    groups: int = 1
    depthwise: bool = False
    bias: bool = True
    ceil: bool = False
    factor: int = 1
    affine: bool = True


class BranchesSpec(NamedTuple):
    """``[A | B | ...]``: sub-chains from one input, concatenated along channels."""

    branches: tuple[Sequence, ...]
    span: Span


class ResidualSpec(NamedTuple):
    """``res[A]`` or ``res[A | S]``: body plus identity or projection shortcut."""

    body: Sequence
    shortcut: Sequence | None
    span: Span


class GateSpec(NamedTuple):
    """``gate[A]``: the input multiplied by ``A`` of the input (squeeze-excite and friends)."""

    body: Sequence
    span: Span


class SplitSpec(NamedTuple):
    """``split[A | B | ...]``: the channels split into equal parts, part k feeding branch k,
    the branch outputs concatenated along channels."""

    branches: tuple[Sequence, ...]
    span: Span


class RepeatSpec(NamedTuple):
    """``X*N``."""

    item: Item
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose: the domain name
    span: Span


class FragmentSpec(NamedTuple):
    """``$name``, with the fragment's layers resolved at parse time."""

    name: str
    body: Sequence
    span: Span


class Sequence(NamedTuple):
    """Items joined by ``->``; a parenthesised group is just a nested Sequence."""

    items: tuple[Item, ...]
    span: Span


Item = Union[LayerSpec, BranchesSpec, ResidualSpec, GateSpec, SplitSpec, RepeatSpec, FragmentSpec,
             Sequence]


class Chain(NamedTuple):
    """An input followed by layers."""

    input: InputSpec
    body: Sequence


class ModelSpec(NamedTuple):
    """A model to analyse: ``name: chain``, a bare chain line, or a command-line chain."""

    name: str
    chain: Chain
    source: Source
    text: str
    span: Span
