"""Lowering the syntax tree to a :class:`~convcost.model.program.Program`: expand groups,
repeats and fragments, lay branches and residual blocks out as steps in execution order, and
give every step its concrete input and output ``(H, W, C)``.

Output sizes follow the contract: ``same`` pads like TensorFlow (the odd pixel at the
bottom/right), explicit padding like PyTorch, ``ceil`` like PyTorch's ``ceil_mode``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from convcost.errors import Source, SpecError
from convcost.lang.ast import (
    BranchesSpec,
    FragmentSpec,
    GateSpec,
    Item,
    LayerSpec,
    ModelSpec,
    RepeatSpec,
    ResidualSpec,
    Sequence,
    SplitSpec,
)
from convcost.lang.vocab import MAX_LAYERS
from convcost.model.geometry import ceil_out, deconv_out, explicit_out, same_padding
from convcost.model.program import Program, Shape, Step

#: Deepest nesting of groups, repeats, fragments, branches and residual blocks resolved;
#: fragments built from fragments could otherwise exhaust Python's stack.
MAX_NESTING = 200


#: (kind, text, input shape) -> what the layer resolves to: its output shape, and the step's
#: fields from ``kernel_hw`` to ``affine``. The text alone decides a layer (the vocabulary
#: builds every LayerSpec from it), and the geometry depends on nothing else, so a layer
#: written 1,000 times, in one model or across a batch of files, is resolved once per input
#: shape. Only successes are kept: an impossible layer raises, located, every time.
_GEOMETRY: dict[tuple[str, str, Shape], tuple[Shape, tuple[Any, ...]]] = {}
_MAX_GEOMETRY = 8192


class _Walk:
    """Mutable state of one resolution: the source and the steps and values made so far."""

    __slots__ = ("source", "per_position", "steps", "values", "depth")

    def __init__(self, source: Source, per_position: bool) -> None:
        self.source = source
        self.per_position = per_position
        self.steps: list[Step] = []
        self.values = 1  # value 0 is the model's input
        self.depth = 0

    def emit(self, owner: LayerSpec | BranchesSpec | ResidualSpec | GateSpec | SplitSpec,
             **fields: Any) -> Step:
        """Append a step writing a new value; refuses models over :data:`MAX_LAYERS` steps."""
        index = len(self.steps) + 1
        if index > MAX_LAYERS:
            self.refuse(owner)
        step = Step(index=index, out=self.values, line=owner.span.line,
                    column=owner.span.column, **fields)
        self.values += 1
        self.steps.append(step)
        return step

    def refuse(self, owner: LayerSpec | BranchesSpec | ResidualSpec | GateSpec | SplitSpec
               ) -> None:
        raise SpecError.at(self.source, owner.span,
                           f"this model expands to more than {MAX_LAYERS:,} layers, the "
                           f"limit per model; lower the repeat counts or fragment uses")


#: ``tuple.__new__`` builds a NamedTuple from a full tuple of its fields without the
#: keyword-argument ``__new__`` (about 3x cheaper, and steps are made by the thousand).
_new_step = tuple.__new__


class _Value(NamedTuple):
    """A value flowing through the resolution: its id and shape."""

    id: int
    shape: Shape


def resolve(model: ModelSpec, size: tuple[int, int] | None = None) -> Program:
    """The :class:`Program` of ``model``; ``size`` replaces the spatial size of its input.

    Raises :class:`SpecError` for impossible shapes (groups, sizes below 1, mismatched
    branches or residual shapes, too many layers).
    """
    spec = model.chain.input
    if size is not None:
        shape = Shape(size[0], size[1], spec.c)
    elif spec.h is None or spec.w is None:
        shape = Shape(1, 1, spec.c)
    else:
        shape = Shape(spec.h, spec.w, spec.c)
    walk = _Walk(model.source, per_position=spec.h is None and size is None)
    result = _sequence(walk, model.chain.body.items, _Value(0, shape), "", [0])
    return Program(model.name, shape, tuple(walk.steps), result.id, model.source,
                   model.span.line)


def _sequence(walk: _Walk, items: tuple[Item, ...], value: _Value, prefix: str,
              position: list[int]) -> _Value:
    """Resolve ``items`` in order from ``value``; ``position`` is the enclosing sequence's
    1-based counter, shared with groups, repeats and fragments expanded into it."""
    walk.depth += 1
    if walk.depth > MAX_NESTING and items:
        raise SpecError.at(walk.source, items[0].span,
                           f"this model nests groups, fragments and blocks more than "
                           f"{MAX_NESTING} levels deep")
    for item in items:
        if isinstance(item, LayerSpec):  # the common case first
            position[0] += 1
            value = _layer(walk, item, value, f"{prefix}{position[0]}")
        elif isinstance(item, Sequence):
            value = _sequence(walk, item.items, value, prefix, position)
        elif isinstance(item, FragmentSpec):
            value = _sequence(walk, item.body.items, value, prefix, position)
        elif isinstance(item, RepeatSpec):
            if item.count > MAX_LAYERS:
                raise SpecError.at(walk.source, item.span,
                                   f"repeat count {item.count:,} is above the limit of "
                                   f"{MAX_LAYERS:,} layers per model")
            for _ in range(item.count):
                value = _sequence(walk, (item.item,), value, prefix, position)
        elif isinstance(item, BranchesSpec):
            position[0] += 1
            value = _branches(walk, item, value, f"{prefix}{position[0]}")
        elif isinstance(item, GateSpec):
            position[0] += 1
            value = _gate(walk, item, value, f"{prefix}{position[0]}")
        elif isinstance(item, SplitSpec):
            position[0] += 1
            value = _split(walk, item, value, f"{prefix}{position[0]}")
        else:
            position[0] += 1
            value = _residual(walk, item, value, f"{prefix}{position[0]}")
    walk.depth -= 1
    return value


def _branches(walk: _Walk, spec: BranchesSpec | SplitSpec, value: _Value, path: str,
              part: Callable[[int], _Value] | None = None) -> _Value:
    """Branches from one input (for a split, each from ``part(number)``), then a concat."""
    outputs = [_sequence(walk, branch.items, part(number) if part else value,
                         f"{path}.b{number}.", [0])
               for number, branch in enumerate(spec.branches, start=1)]
    first = outputs[0].shape
    for number, out in enumerate(outputs[1:], start=2):
        if (out.shape.h, out.shape.w) != (first.h, first.w):
            raise SpecError.at(walk.source, spec.span,
                               f"branches disagree on spatial size: branch 1 gives "
                               f"{first.h}x{first.w}, branch {number} gives "
                               f"{out.shape.h}x{out.shape.w}; every branch must end at the "
                               f"same HxW to be concatenated")
    output = Shape(first.h, first.w, sum(out.shape.c for out in outputs))
    step = walk.emit(spec, path=f"{path}.concat", kind="concat", text="concat",
                     input=value.shape, output=output,
                     inputs=tuple(out.id for out in outputs),
                     operands=tuple(out.shape for out in outputs))
    return _Value(step.out, output)


def _split(walk: _Walk, spec: SplitSpec, value: _Value, path: str) -> _Value:
    """Equal channel parts (``slice`` views), one per branch, then a concat."""
    count, channels = len(spec.branches), value.shape.c
    if channels % count:
        raise SpecError.at(walk.source, spec.span,
                           f"cannot split {channels} channels into {count} equal parts")
    width = channels // count
    part_shape = Shape(value.shape.h, value.shape.w, width)

    def part(number: int) -> _Value:
        start, stop = (number - 1) * width, number * width
        step = walk.emit(spec, path=f"{path}.b{number}.slice", kind="slice",
                         text=f"slice[{start}:{stop}]", input=value.shape, output=part_shape,
                         inputs=(value.id,), operands=(value.shape,), channels=(start, stop))
        return _Value(step.out, part_shape)

    return _branches(walk, spec, value, path, part)


def _gate(walk: _Walk, spec: GateSpec, value: _Value, path: str) -> _Value:
    """``x * g(x)``: the gate is 1x1xC (broadcast over H and W) or x's own shape."""
    gate = _sequence(walk, spec.body.items, value, f"{path}.gate.", [0])
    shape = value.shape
    if gate.shape not in (shape, Shape(1, 1, shape.c)):
        raise SpecError.at(walk.source, spec.span,
                           f"gate shape {gate.shape} does not fit the input {shape}; a gate "
                           f"ends at 1x1x{shape.c} (one factor per channel) or at {shape} "
                           f"(one per element)")
    step = walk.emit(spec, path=f"{path}.mul", kind="mul", text="mul", input=shape,
                     output=shape, inputs=(value.id, gate.id), operands=(shape, gate.shape))
    return _Value(step.out, shape)


def _residual(walk: _Walk, spec: ResidualSpec, value: _Value, path: str) -> _Value:
    body = _sequence(walk, spec.body.items, value, f"{path}.body.", [0])
    shortcut = value
    if spec.shortcut is not None:
        shortcut = _sequence(walk, spec.shortcut.items, value, f"{path}.short.", [0])
    if body.shape != shortcut.shape:
        which = "the shortcut" if spec.shortcut is not None else "the identity shortcut"
        hint = "" if spec.shortcut is not None else \
            f"; add a projection shortcut, e.g. res[... | 1x1({body.shape.c})]"
        raise SpecError.at(walk.source, spec.span,
                           f"residual shapes differ: the body gives {body.shape} but {which} "
                           f"gives {shortcut.shape}{hint}")
    step = walk.emit(spec, path=f"{path}.add", kind="add", text="add", input=body.shape,
                     output=body.shape, inputs=(body.id, shortcut.id),
                     operands=(body.shape, shortcut.shape))
    return _Value(step.out, body.shape)


def _layer(walk: _Walk, spec: LayerSpec, value: _Value, path: str) -> _Value:
    """Resolve one layer's geometry and output shape, and emit its step.

    The hot path of resolution: a layer resolved before on the same input shape reuses its
    geometry, and the step is built positionally, in field order."""
    shape = value.shape
    kind, text, span = spec[0], spec[1], spec[2]
    key = (kind, text, shape)
    known = _GEOMETRY.get(key)
    if known is None:
        fields = _geometry(walk, spec, shape)
        if len(_GEOMETRY) >= _MAX_GEOMETRY:
            _GEOMETRY.clear()
        known = _GEOMETRY[key] = (fields[0], fields[1:])
    output, rest = known
    steps = walk.steps
    index = len(steps) + 1
    if index > MAX_LAYERS:
        walk.refuse(spec)
    out = walk.values
    walk.values = out + 1
    steps.append(_new_step(Step, (index, path, kind, text, shape, output, (value.id,), out,
                                  (shape,), *rest, span[0], span[1])))
    return _new_step(_Value, (out, output))


def _geometry(walk: _Walk, spec: LayerSpec, shape: Shape) -> tuple[Any, ...]:
    """The step fields of ``spec`` on a ``shape`` input, from ``output`` to ``affine`` less
    ``inputs``, ``out`` and ``operands``: output, kernel_hw, stride_hw, dilation_hw, padding,
    pad_mode, groups, bias, ceil, factor, channels, affine."""
    kind = spec.kind

    def make(output: Shape, kernel_hw: tuple[int, int] = (1, 1),
             stride_hw: tuple[int, int] = (1, 1), dilation_hw: tuple[int, int] = (1, 1),
             padding: tuple[int, int, int, int] = (0, 0, 0, 0), pad_mode: str = "explicit",
             groups: int = 1, bias: bool = False, ceil: bool = False, factor: int = 1,
             affine: bool = True) -> tuple[Any, ...]:
        return (output, kernel_hw, stride_hw, dilation_hw, padding, pad_mode, groups, bias,
                ceil, factor, (0, 0), affine)

    if kind in ("conv", "deconv"):
        return _conv(walk, spec, shape, make)
    if kind in ("maxpool", "avgpool"):
        return _pool(walk, spec, shape, make)
    if kind == "fc":
        assert spec.out_channels is not None
        return make(output=Shape(1, 1, spec.out_channels), bias=spec.bias)
    if kind == "gap":
        return make(output=Shape(1, 1, shape.c))
    if kind == "up":
        return make(output=Shape(shape.h * spec.factor, shape.w * spec.factor, shape.c),
                    factor=spec.factor)
    # shape-preserving; groups and affine are those of gn, shuffle and the norms
    if shape.c % spec.groups:
        raise SpecError.at(walk.source, spec.span,
                           f"{shape.c} channels do not divide into {spec.groups} groups "
                           f"for {kind}")
    return make(output=shape, groups=spec.groups, affine=spec.affine)


def _conv(walk: _Walk, spec: LayerSpec, shape: Shape,
          make: Callable[..., tuple[Any, ...]]) -> tuple[Any, ...]:
    cin = shape.c
    groups = cin if spec.depthwise else spec.groups
    cout = spec.out_channels if spec.out_channels is not None else cin
    if spec.depthwise and cout % cin:
        raise SpecError.at(walk.source, spec.span,
                           f"depthwise {spec.kind} with {cout} output channels needs a multiple "
                           f"of its {cin} input channels (a depth multiplier)")
    if cin % groups or cout % groups:
        raise SpecError.at(walk.source, spec.span,
                           f"channels not divisible by groups: {cin} input and {cout} output "
                           f"channels must both divide by g={groups}")
    kh, kw = spec.kernel_hw
    sh, sw = spec.stride_hw or (1, 1)
    dh, dw = spec.dilation_hw
    if spec.kind == "deconv":
        oh, top, bottom = deconv_out(shape.h, kh, sh, dh, spec.padding, 0)
        ow, left, right = deconv_out(shape.w, kw, sw, dw, spec.padding, 1)
    else:
        (oh, top, bottom), (ow, left, right) = _axes(spec, shape, (sh, sw), (dh, dw))
    _check_size(walk, spec, shape, oh, ow)
    return make(output=Shape(oh, ow, cout), kernel_hw=(kh, kw), stride_hw=(sh, sw),
                dilation_hw=(dh, dw), padding=(top, bottom, left, right),
                pad_mode="same" if spec.padding == "same" else "explicit", groups=groups,
                bias=spec.bias)


def _pool(walk: _Walk, spec: LayerSpec, shape: Shape,
          make: Callable[..., tuple[Any, ...]]) -> tuple[Any, ...]:
    stride = spec.stride_hw or spec.kernel_hw
    if isinstance(spec.padding, tuple) and any(
            pad > kernel // 2 for pad, kernel in zip(spec.padding, spec.kernel_hw)):
        # PyTorch refuses this too: such windows would see nothing but padding.
        raise SpecError.at(walk.source, spec.span,
                           f"pool padding {spec.padding[0]}x{spec.padding[1]} is more than half "
                           f"the {spec.kernel_hw[0]}x{spec.kernel_hw[1]} kernel; windows would "
                           f"cover only padding")
    (oh, top, bottom), (ow, left, right) = _axes(spec, shape, stride, (1, 1))
    _check_size(walk, spec, shape, oh, ow)
    return make(output=Shape(oh, ow, shape.c), kernel_hw=spec.kernel_hw, stride_hw=stride,
                padding=(top, bottom, left, right),
                pad_mode="same" if spec.padding == "same" else "explicit", ceil=spec.ceil)


def _axes(spec: LayerSpec, shape: Shape, stride: tuple[int, int],
          dilation: tuple[int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(out, before, after)`` for the H and W axes of a convolution or pool."""
    result = []
    for axis, size in enumerate((shape.h, shape.w)):
        kernel, step, dil = spec.kernel_hw[axis], stride[axis], dilation[axis]
        if spec.padding == "same":
            result.append(same_padding(size, kernel, step, dil))
            continue
        pad = spec.padding[axis] if isinstance(spec.padding, tuple) else 0  # 'valid'
        out = ceil_out(size, kernel, step, pad) if spec.ceil else \
            explicit_out(size, kernel, step, dil, pad)
        result.append((out, pad, pad))
    return result[0], result[1]


def _check_size(walk: _Walk, spec: LayerSpec, shape: Shape, oh: int, ow: int) -> None:
    if oh >= 1 and ow >= 1:
        return
    hint = ""
    if walk.per_position:
        hint = ("; the input has no spatial size (a chain on a channel count is costed per "
                "output position): give one with --size HxW or write an HxWxC input")
    raise SpecError.at(walk.source, spec.span,
                       f"output size below 1: {spec.text} on a {shape.h}x{shape.w} input gives "
                       f"{oh}x{ow}{hint}")
