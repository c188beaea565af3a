"""Shape inference: expand groups, repeats and fragments, resolve branches and residual blocks,
and give every layer its concrete input and output ``(H, W, C)``.

Output sizes follow the contract: ``same`` pads like TensorFlow (the odd pixel at the
bottom/right), explicit padding like PyTorch, ``ceil`` like PyTorch's ``ceil_mode``.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from convcost.errors import SpecError, Source
from convcost.net import Branches, Layer, Network, Node, Residual, Shape
from convcost.spec.ast import (
    BranchesSpec, FragmentSpec, Item, LayerSpec, ModelSpec, RepeatSpec, ResidualSpec, Sequence,
)

#: Most layers one model may expand to; beyond this a model is refused with a clear message
#: rather than building millions of objects.
MAX_LAYERS = 100_000
#: Deepest nesting of groups, repeats, fragments, branches and residual blocks resolved;
#: fragments built from fragments could otherwise exhaust Python's stack.
MAX_NESTING = 200


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """``(out, before, after)`` for TensorFlow ``same`` padding along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return out, total // 2, total - total // 2


def explicit_out(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Output size along one axis with explicit padding ``pad`` on both sides (floor mode)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def ceil_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """PyTorch's ``ceil_mode`` output size: no window may start inside the right padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def deconv_out(size: int, kernel: int, stride: int, dilation: int,
               padding: str | tuple[int, int], axis: int) -> tuple[int, int, int]:
    """``(out, crop_before, crop_after)`` of a transposed convolution along one axis.

    The full output is ``(I-1)*s + d*(K-1) + 1``; ``same`` crops it to ``I*s`` (a negative
    crop appends zeros), explicit ``P`` crops ``P`` at each side.
    """
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    if padding == "same":
        total = full - size * stride
        before = total // 2 if total >= 0 else 0
        return size * stride, before, total - before
    pad = padding[axis] if isinstance(padding, tuple) else 0  # 'valid'
    return full - 2 * pad, pad, pad


class _Walk:
    """Mutable state of one resolution: the source and the layers made so far."""

    __slots__ = ("source", "per_position", "count", "depth")

    def __init__(self, source: Source, per_position: bool) -> None:
        self.source = source
        self.per_position = per_position
        self.count = 0
        self.depth = 0


def resolve(model: ModelSpec, size: tuple[int, int] | None = None) -> Network:
    """The :class:`Network` of ``model``; ``size`` replaces the spatial size of its input.

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
    nodes, _ = _sequence(walk, model.chain.body.items, shape, "", [0])
    return Network(model.name, shape, tuple(nodes))


def _sequence(walk: _Walk, items: tuple[Item, ...], shape: Shape, prefix: str,
              position: list[int]) -> tuple[list[Node], Shape]:
    """Resolve ``items`` in order from ``shape``; ``position`` is the enclosing sequence's
    1-based counter, shared with groups, repeats and fragments expanded into it."""
    nodes: list[Node] = []
    walk.depth += 1
    if walk.depth > MAX_NESTING and items:
        raise SpecError.at(walk.source, items[0].span,
                           f"this model nests groups, fragments and blocks more than "
                           f"{MAX_NESTING} levels deep")
    for item in items:
        if isinstance(item, LayerSpec):
            position[0] += 1
            layer = _layer(walk, item, shape, f"{prefix}{position[0]}")
            nodes.append(layer)
            shape = layer.output
        elif isinstance(item, Sequence):
            more, shape = _sequence(walk, item.items, shape, prefix, position)
            nodes.extend(more)
        elif isinstance(item, FragmentSpec):
            more, shape = _sequence(walk, item.body.items, shape, prefix, position)
            nodes.extend(more)
        elif isinstance(item, RepeatSpec):
            if item.count > MAX_LAYERS:
                raise SpecError.at(walk.source, item.span,
                                   f"repeat count {item.count:,} is above the limit of "
                                   f"{MAX_LAYERS:,} layers per model")
            for _ in range(item.count):
                more, shape = _sequence(walk, (item.item,), shape, prefix, position)
                nodes.extend(more)
        elif isinstance(item, BranchesSpec):
            position[0] += 1
            node = _branches(walk, item, shape, f"{prefix}{position[0]}")
            nodes.append(node)
            shape = node.concat.output
        else:
            position[0] += 1
            residual = _residual(walk, item, shape, f"{prefix}{position[0]}")
            nodes.append(residual)
            shape = residual.add.output
    walk.depth -= 1
    return nodes, shape


def _new_index(walk: _Walk, span_owner: LayerSpec | BranchesSpec | ResidualSpec) -> int:
    walk.count += 1
    if walk.count > MAX_LAYERS:
        raise SpecError.at(walk.source, span_owner.span,
                           f"this model expands to more than {MAX_LAYERS:,} layers, the limit "
                           f"per model; lower the repeat counts or fragment uses")
    return walk.count


def _branches(walk: _Walk, spec: BranchesSpec, shape: Shape, path: str) -> Branches:
    branches: list[tuple[Node, ...]] = []
    outputs: list[Shape] = []
    for number, branch in enumerate(spec.branches, start=1):
        nodes, out = _sequence(walk, branch.items, shape, f"{path}.b{number}.", [0])
        branches.append(tuple(nodes))
        outputs.append(out)
    first = outputs[0]
    for number, out in enumerate(outputs[1:], start=2):
        if (out.h, out.w) != (first.h, first.w):
            raise SpecError.at(walk.source, spec.span,
                               f"branches disagree on spatial size: branch 1 gives "
                               f"{first.h}x{first.w}, branch {number} gives {out.h}x{out.w}; "
                               f"every branch must end at the same HxW to be concatenated")
    output = Shape(first.h, first.w, sum(out.c for out in outputs))
    concat = Layer(index=_new_index(walk, spec), path=f"{path}.concat", kind="concat",
                   text="concat", input=shape, output=output, operands=tuple(outputs),
                   line=spec.span.line, column=spec.span.column)
    return Branches(tuple(branches), concat)


def _residual(walk: _Walk, spec: ResidualSpec, shape: Shape, path: str) -> Residual:
    body, body_out = _sequence(walk, spec.body.items, shape, f"{path}.body.", [0])
    shortcut: list[Node] = []
    short_out = shape
    if spec.shortcut is not None:
        shortcut, short_out = _sequence(walk, spec.shortcut.items, shape, f"{path}.short.", [0])
    if body_out != short_out:
        which = "the shortcut" if spec.shortcut is not None else "the identity shortcut"
        hint = "" if spec.shortcut is not None else \
            f"; add a projection shortcut, e.g. res[... | 1x1({body_out.c})]"
        raise SpecError.at(walk.source, spec.span,
                           f"residual shapes differ: the body gives {body_out} but {which} "
                           f"gives {short_out}{hint}")
    add = Layer(index=_new_index(walk, spec), path=f"{path}.add", kind="add", text="add",
                input=body_out, output=body_out, operands=(body_out, short_out),
                line=spec.span.line, column=spec.span.column)
    return Residual(tuple(body), tuple(shortcut), add)


def _layer(walk: _Walk, spec: LayerSpec, shape: Shape, path: str) -> Layer:
    """Resolve one layer's geometry and output shape."""
    kind = spec.kind
    make = partial(Layer, index=_new_index(walk, spec), path=path, kind=kind, text=spec.text,
                   input=shape, line=spec.span.line, column=spec.span.column)
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
    return make(output=shape)


def _conv(walk: _Walk, spec: LayerSpec, shape: Shape, make: Callable[..., Layer]) -> Layer:
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


def _pool(walk: _Walk, spec: LayerSpec, shape: Shape, make: Callable[..., Layer]) -> Layer:
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
        hint = (f"; the input has no spatial size (a chain on a channel count is costed per "
                f"output position): give one with --size HxW or write an HxWxC input")
    raise SpecError.at(walk.source, spec.span,
                       f"output size below 1: {spec.text} on a {shape.h}x{shape.w} input gives "
                       f"{oh}x{ow}{hint}")
