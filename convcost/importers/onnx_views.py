"""Lowering the ONNX ops that move data rather than compute: Concat, Split and Slice on the
channels (``concat`` and ``slice`` steps), the channel shuffle's Reshape-Transpose-Reshape
(one ``shuffle`` step), and the free layout changes (Transpose between NCHW and NHWC,
Flatten, Reshape to N x features, Squeeze, Unsqueeze, Identity, Dropout: no step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcost.importers.onnx_graph import Act, Tensor
from convcost.importers.onnx_ops import Lowered, lowers
from convcost.model.program import Shape

if TYPE_CHECKING:
    from convcost.importers.onnx_lower import Lowering


@lowers("Concat")
def _concat(low: Lowering) -> Lowered:
    assert low.node is not None
    acts = [low.act(index) for index in range(len(low.node.inputs))]
    layout = acts[0].layout
    rank = 2 if layout == "flat" else 4
    axis = int(low.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    channel_axis = {"nchw": 1, "nhwc": 3, "flat": 1}.get(layout)
    if axis != channel_axis or any(act.layout != layout for act in acts):
        raise low.error("only a concatenation along the channels is supported")
    first = acts[0].shape
    for act in acts[1:]:
        if (act.shape.h, act.shape.w) != (first.h, first.w):
            raise low.error(f"inputs disagree on spatial size: {first} and {act.shape}")
    if layout == "flat" and first.h * first.w != 1:
        raise low.error("only a concatenation of 1x1 features is supported")
    shape = Shape(first.h, first.w, sum(act.shape.c for act in acts))
    return Act(low.emit("concat", "concat", acts, shape), shape, layout)


def _channel_slice(low: Lowering, act: Act, start: int, stop: int) -> Act:
    shape = Shape(act.shape.h, act.shape.w, stop - start)
    value = low.emit("slice", f"slice[{start}:{stop}]", [act], shape, channels=(start, stop))
    return Act(value, shape, act.layout)


@lowers("Split")
def _split(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    rank = len(low.dims_of(act))
    axis = int(low.attr("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if axis != {"nchw": 1, "nhwc": 3, "flat": 1}.get(act.layout):
        raise low.error("only a split along the channels is supported")
    sizes_tensor = low.const(1, "split sizes")
    channels, count = act.shape.c, len(low.node.outputs)
    if sizes_tensor is not None and sizes_tensor.values is not None:
        sizes = [int(v) for v in sizes_tensor.values]
    elif low.attr("split"):
        sizes = [int(v) for v in low.attr("split")]
    else:
        count = int(low.attr("num_outputs", count))
        part = -(-channels // count)
        sizes = [min(part, channels - part * index) for index in range(count)]
    if sum(sizes) != channels or min(sizes) < 1:
        raise low.error(f"split sizes {sizes} do not add up to {channels} channels")
    outputs: list[Act | Tensor] = []
    start = 0
    for size in sizes:
        outputs.append(_channel_slice(low, act, start, start + size))
        start += size
    return outputs


@lowers("Slice")
def _slice(low: Lowering) -> Lowered:
    act = low.act()
    dims = low.dims_of(act)
    channel_axis = {"nchw": 1, "nhwc": 3, "flat": 1}.get(act.layout)
    start, stop = 0, act.shape.c
    for axis, first, last, step in low.slices(act):
        begin, end = low.clamp(first, last, step, dims[axis] if axis < len(dims) else 0)
        if axis == channel_axis:
            start, stop = begin, end
        elif (begin, end) != (0, dims[axis] if axis < len(dims) else 0):
            raise low.error("only a slice of the channels is supported")
    if stop <= start:
        raise low.error("the slice is empty")
    if (start, stop) == (0, act.shape.c):
        return act
    if act.layout == "flat" and act.shape.h * act.shape.w != 1:
        raise low.error("only a slice of 1x1 features is supported")
    return _channel_slice(low, act, start, stop)


@lowers("Reshape")
def _reshape(low: Lowering) -> Lowered:
    act = low.act()
    h, w, c = act.shape
    written = low.const(1, "the shape")
    raw = [int(v) for v in written.values] if written is not None and written.values else []
    # The channel shuffle's reshapes only regroup channels: a graph exported at another size
    # (analysed with --size) hard-codes its export-time H and W there, which do not matter.
    if act.layout == "nchw" and len(raw) == 5 and raw[1] > 0 and raw[2] > 0 \
            and raw[1] * raw[2] == c:
        return act._replace(layout="grouped", groups=raw[1])
    if act.layout == "grouped_t" and len(raw) == 4 and raw[1] in (c, -1) \
            and raw[2:] != [-1, -1]:
        value = low.emit("shuffle", f"shuffle({act.groups})", [act], act.shape,
                         groups=act.groups)
        return Act(value, act.shape)
    target = low.reshape_target(act)
    if len(target) == 5 and act.layout == "nchw" and target[3:] == (h, w) \
            and target[1] * target[2] == c:
        return act._replace(layout="grouped", groups=target[1])
    if len(target) == 4 and target[1:] == (c, h, w):
        if act.layout == "grouped_t":
            text = f"shuffle({act.groups})"
            value = low.emit("shuffle", text, [act], act.shape, groups=act.groups)
            return Act(value, act.shape)
        if act.layout in ("nchw", "grouped"):
            return act._replace(layout="nchw", groups=1)
    if len(target) == 4 and act.layout == "flat" and target[1:] == (act.shape.elements, 1, 1) \
            and h * w == 1:
        return act._replace(layout="nchw")
    if len(target) == 2 and act.layout in ("nchw", "nhwc", "flat"):
        return act._replace(layout="flat")
    raise low.error(f"a reshape of a {act.layout} activation {list(low.dims_of(act))} to "
                    f"{list(target)} is not supported (only flattening and the channel "
                    f"shuffle's reshapes are)")


_TRANSPOSES = {("nchw", (0, 2, 3, 1)): "nhwc", ("nhwc", (0, 3, 1, 2)): "nchw",
               ("grouped", (0, 2, 1, 3, 4)): "grouped_t",
               ("grouped_t", (0, 2, 1, 3, 4)): "grouped"}


@lowers("Transpose")
def _transpose(low: Lowering) -> Lowered:
    act = low.act()
    perm = tuple(int(axis) for axis in low.attr("perm", ()))
    if perm == tuple(range(len(perm))) and perm:
        return act
    layout = _TRANSPOSES.get((act.layout, perm))
    if layout is None and act.shape.h * act.shape.w == 1 and act.layout in ("nchw", "nhwc"):
        layout = {"nchw": "nhwc", "nhwc": "nchw"}[act.layout]
    if layout is None:
        raise low.error(f"a transpose {list(perm)} of a {act.layout} activation is not "
                        f"supported (only NCHW<->NHWC and the channel shuffle's)")
    return act._replace(layout=layout)


@lowers("Flatten")
def _flatten(low: Lowering) -> Lowered:
    act = low.act()
    if int(low.attr("axis", 1)) != 1 or act.layout not in ("nchw", "nhwc", "flat"):
        raise low.error("only Flatten(axis=1) of an image activation is supported")
    return act._replace(layout="flat")


@lowers("Squeeze", "Unsqueeze")
def _squeeze(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    if act.shape.h * act.shape.w != 1:
        raise low.error(f"{low.node.op} of a {act.shape} activation is not supported")
    if low.node.op == "Squeeze" and act.layout in ("nchw", "nhwc"):
        return act._replace(layout="flat")
    if low.node.op == "Unsqueeze" and act.layout == "flat":
        return act._replace(layout="nchw")
    raise low.error(f"{low.node.op} of a {act.layout} activation is not supported")


@lowers("Identity", "Dropout")
def _identity(low: Lowering) -> Lowered:
    return low.act()
