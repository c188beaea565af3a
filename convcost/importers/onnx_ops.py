"""One lowering function per ONNX op: nodes on activations become program steps.

Conventions (the same as specs'): a convolution's bias input, or an ``Add`` of a per-channel
constant right after a MatMul/Gemm/Conv without one, is the layer's bias; a ``Mul`` by a
per-channel constant is a layer ``scale``; ``Sigmoid``/``HardSigmoid`` whose only reader
multiplies it with its own input are ``silu``/``hardswish``; ``Clip(0, 6)`` is ``relu6``,
``Clip(0, inf)`` ``relu``, and a clip with other bounds is costed as ``relu6`` (one op per
element, no params) with its bounds in the layer text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from convcost.importers.onnx_graph import Act, Tensor
from convcost.model.geometry import ceil_out, explicit_out, same_padding
from convcost.model.program import Shape

if TYPE_CHECKING:
    from convcost.importers.onnx_lower import Lowering

Lowered = Union[Act, Tensor, list[Union[Act, Tensor]]]
OPS: dict[str, Callable[[Lowering], Lowered]] = {}


def lowers(*ops: str) -> Callable[[Callable[[Lowering], Lowered]],
                                  Callable[[Lowering], Lowered]]:
    def register(function: Callable[[Lowering], Lowered]) -> Callable[[Lowering], Lowered]:
        for op in ops:
            OPS[op] = function
        return function
    return register


def _pair(value: tuple[int, ...] | None, default: int) -> tuple[int, int]:
    """Two values (height, width) of a 2-D attribute; refuses values below ``default``'s
    floor (1 for strides and dilations, 0 for output padding)."""
    if not value:
        return default, default
    if len(value) != 2:
        raise ValueError(f"expected 2 values for a 2-D window, got {len(value)}")
    pair = int(value[0]), int(value[1])
    if min(pair) < min(default, 1):
        raise ValueError(f"values {list(pair)} must be at least {min(default, 1)}")
    return pair


def _pads_text(pads: tuple[int, int, int, int], same: bool) -> str:
    top, bottom, left, right = pads
    if same:
        return "p=same"
    if not any(pads):
        return "p=valid"
    if top == bottom and left == right:
        return f"p={top}" if top == left else f"p={top}x{left}"
    return f"p={top},{bottom},{left},{right}"


def _window(low: Lowering, act: Act, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], ceil: bool = False
            ) -> tuple[Shape, tuple[int, int, int, int], bool]:
    """Output HxW, padding ``(top, bottom, left, right)`` and whether it is ``same``, from a
    Conv or pool node's ``pads``/``auto_pad`` (ONNX pads: [top, left, bottom, right])."""
    auto = str(low.attr("auto_pad", "NOTSET"))
    sizes = (act.shape.h, act.shape.w)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        axes = [same_padding(size, kernel[i], stride[i], dilation[i])
                for i, size in enumerate(sizes)]
        if auto == "SAME_LOWER":
            axes = [(out, after, before) for out, before, after in axes]
        (oh, top, bottom), (ow, left, right) = axes
        return Shape(oh, ow, 0), (top, bottom, left, right), auto == "SAME_UPPER"
    pads = tuple(int(p) for p in low.attr("pads", (0, 0, 0, 0))) if auto != "VALID" \
        else (0, 0, 0, 0)
    if len(pads) != 4:
        raise low.error(f"expected 4 pads for a 2-D window, got {len(pads)}")
    top, left, bottom, right = pads
    if min(pads) < 0:
        raise low.error("negative pads are not supported")
    outs = []
    for axis, (size, before, after) in enumerate(((sizes[0], top, bottom),
                                                   (sizes[1], left, right))):
        if ceil:
            if before != after:
                raise low.error("ceil_mode with asymmetric pads is not supported")
            outs.append(ceil_out(size, kernel[axis], stride[axis], before))
        else:
            outs.append(explicit_out(size + before + after, kernel[axis], stride[axis],
                                     dilation[axis], 0))
    if min(outs) < 1:
        raise low.error(f"output size below 1 on a {sizes[0]}x{sizes[1]} input")
    return Shape(outs[0], outs[1], 0), (top, bottom, left, right), False


def _need_layout(low: Lowering, act: Act, *layouts: str) -> None:
    if act.layout not in layouts:
        raise low.error(f"expected an {' or '.join(layouts).upper()} activation, got a "
                        f"{act.layout} one")


def _conv_text(kh: int, kw: int, cout: int, cin: int, stride: tuple[int, int],
               dilation: tuple[int, int], groups: int, bias: bool, padding: str,
               prefix: str = "") -> str:
    args = []
    if groups == cin and groups > 1:
        args += ["dw"] if cout == cin else [str(cout), "dw"]
    else:
        args.append(str(cout))
        if groups > 1:
            args.append(f"g={groups}")
    if stride != (1, 1):
        args.append(f"s={stride[0]}" if stride[0] == stride[1] else f"s={stride[0]}x{stride[1]}")
    if padding != "p=valid" or (kh, kw) != (1, 1):  # a 1x1 kernel pads nothing either way
        args.append(padding)
    if dilation != (1, 1):
        args.append(f"d={dilation[0]}" if dilation[0] == dilation[1]
                    else f"d={dilation[0]}x{dilation[1]}")
    if not bias:
        args.append("nobias")
    return f"{prefix}{kh}x{kw}({', '.join(args)})"


@lowers("Conv")
def _conv(low: Lowering) -> Lowered:
    act = low.act()
    _need_layout(low, act, "nchw")
    weight = low.const(1, "weights")
    if weight is None or len(weight.dims) != 4:
        raise low.error("only 2-D convolutions (4-D weights) are supported")
    if min(weight.dims) < 1:
        raise low.error(f"weights of dims {list(weight.dims)}")
    cout, cin_group, kh, kw = weight.dims
    groups = int(low.attr("group", 1))
    if groups < 1 or cin_group * groups != act.shape.c or cout % groups:
        raise low.error(f"weights {list(weight.dims)} with group={groups} do not fit "
                        f"{act.shape.c} input channels")
    bias = low.const(2, "bias") is not None
    stride, dilation = _pair(low.attr("strides"), 1), _pair(low.attr("dilations"), 1)
    out, padding, same = _window(low, act, (kh, kw), stride, dilation)
    text = _conv_text(kh, kw, cout, act.shape.c, stride, dilation, groups, bias,
                      _pads_text(padding, same))
    shape = Shape(out.h, out.w, cout)
    value = low.emit("conv", text, [act], shape, kernel_hw=(kh, kw), stride_hw=stride,
                     dilation_hw=dilation, padding=padding,
                     pad_mode="same" if same else "explicit", groups=groups, bias=bias)
    return Act(value, shape)


@lowers("ConvTranspose")
def _deconv(low: Lowering) -> Lowered:
    act = low.act()
    _need_layout(low, act, "nchw")
    weight = low.const(1, "weights")
    if weight is None or len(weight.dims) != 4:
        raise low.error("only 2-D transposed convolutions (4-D weights) are supported")
    if min(weight.dims) < 1:
        raise low.error(f"weights of dims {list(weight.dims)}")
    cin, cout_group, kh, kw = weight.dims
    groups = int(low.attr("group", 1))
    if groups < 1 or cin != act.shape.c or cin % groups:
        raise low.error(f"weights {list(weight.dims)} with group={groups} do not fit "
                        f"{act.shape.c} input channels")
    cout = cout_group * groups
    bias = low.const(2, "bias") is not None
    stride, dilation = _pair(low.attr("strides"), 1), _pair(low.attr("dilations"), 1)
    extra = _pair(low.attr("output_padding"), 0)
    pads = tuple(int(p) for p in low.attr("pads", (0, 0, 0, 0)))
    auto = str(low.attr("auto_pad", "NOTSET"))
    wanted = low.attr("output_shape")
    crops, outs = [], []
    for axis, size in enumerate((act.shape.h, act.shape.w)):
        kernel = (kh, kw)[axis]
        full = (size - 1) * stride[axis] + dilation[axis] * (kernel - 1) + 1
        if wanted or auto in ("SAME_UPPER", "SAME_LOWER"):
            out = int(wanted[-2 + axis]) if wanted else size * stride[axis]
            total = full + extra[axis] - out
            half = total // 2
            before, after = (half, total - half) if auto != "SAME_LOWER" and not wanted \
                or auto == "SAME_UPPER" else (total - half, half)
        else:
            before, after = (0, 0) if auto == "VALID" else (pads[axis], pads[axis + 2])
        crops.append((before, after - extra[axis]))
        outs.append(full - before - after + extra[axis])
    if min(outs) < 1:
        raise low.error("output size below 1")
    padding = (crops[0][0], crops[0][1], crops[1][0], crops[1][1])
    text = _conv_text(kh, kw, cout, cin, stride, dilation, groups, bias,
                      _pads_text(padding, False), prefix="deconv")
    shape = Shape(outs[0], outs[1], cout)
    value = low.emit("deconv", text, [act], shape, kernel_hw=(kh, kw), stride_hw=stride,
                     dilation_hw=dilation, padding=padding, groups=groups, bias=bias)
    return Act(value, shape)


@lowers("Gemm")
def _gemm(low: Lowering) -> Lowered:
    act = low.act()
    if int(low.attr("transA", 0)):
        raise low.error("Gemm with transA=1 is not supported")
    weight = low.const(1, "weights")
    if weight is None or len(weight.dims) != 2:
        raise low.error("Gemm needs 2-D constant weights")
    if min(weight.dims) < 1:
        raise low.error(f"weights of dims {list(weight.dims)}")
    outputs, inputs = weight.dims if int(low.attr("transB", 0)) else reversed(weight.dims)
    return _linear(low, act, inputs, outputs, low.const(2, "bias") is not None)


@lowers("MatMul")
def _matmul(low: Lowering) -> Lowered:
    act = low.act()
    weight = low.const(1, "weights")
    if weight is None or len(weight.dims) != 2:
        raise low.error("MatMul is supported with a 2-D constant second operand (a linear "
                        "layer)")
    if min(weight.dims) < 1:
        raise low.error(f"weights of dims {list(weight.dims)}")
    inputs, outputs = weight.dims
    return _linear(low, act, inputs, outputs, False)


def _linear(low: Lowering, act: Act, inputs: int, outputs: int, bias: bool) -> Act:
    """A linear layer: ``fc`` on a flat input, a 1x1 ``conv`` on a channels-last one."""
    if act.layout == "nhwc":
        if inputs != act.shape.c:
            raise low.error(f"weights take {inputs} features but the input has "
                            f"{act.shape.c} channels")
        shape = Shape(act.shape.h, act.shape.w, outputs)
        text = f"1x1({outputs}{'' if bias else ', nobias'})"
        return Act(low.emit("conv", text, [act], shape, bias=bias), shape, "nhwc")
    if act.layout != "flat" and act.shape.h * act.shape.w != 1:
        raise low.error(f"a linear layer on a {act.layout} activation of {act.shape} is not "
                        f"supported (flatten it first)")
    if inputs != act.shape.elements:
        raise low.error(f"weights take {inputs} features but the input has "
                        f"{act.shape.elements}")
    shape = Shape(1, 1, outputs)
    text = f"fc({outputs}{'' if bias else ', nobias'})"
    return Act(low.emit("fc", text, [act], shape, bias=bias), shape, "flat")


@lowers("BatchNormalization")
def _bn(low: Lowering) -> Lowered:
    act = low.act()
    _need_layout(low, act, "nchw", "flat")
    for index, what in ((1, "scale"), (2, "shift"), (3, "mean"), (4, "variance")):
        tensor = low.const(index, what)
        if tensor is None or tensor.size != act.shape.c:
            raise low.error(f"the {what} must be a constant of {act.shape.c} values")
    return Act(low.emit("bn", "bn", [act], act.shape), act.shape, act.layout)


@lowers("LayerNormalization")
def _ln(low: Lowering) -> Lowered:
    act = low.act()
    rank = 4 if act.layout != "flat" else 2
    axis = int(low.attr("axis", -1))
    axis = axis + rank if axis < 0 else axis
    channel_only = (act.layout in ("nhwc", "flat") and axis == rank - 1) or \
        (act.layout == "nchw" and axis == 1 and act.shape.h * act.shape.w == 1)
    if not channel_only:
        raise low.error(f"only a layer norm over the channels is supported (axis={axis} on "
                        f"a {act.layout} activation)")
    scale, shift = low.const(1, "scale"), low.const(2, "shift")
    if (scale is None) != (shift is None):
        raise low.error("a layer norm with a scale but no shift (or the reverse) is not "
                        "supported")
    affine = scale is not None
    text = "ln" if affine else "ln(noaffine)"
    return Act(low.emit("ln", text, [act], act.shape, affine=affine), act.shape, act.layout)


_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSigmoid":
                "hardsigmoid", "HardSwish": "hardswish", "LeakyRelu": "leakyrelu",
                "Elu": "elu", "Softmax": "softmax", "Mish": "mish", "Gelu": "gelu"}


#: ONNX's default ``alpha`` of the activations that take one (the language's defaults too).
_ALPHA_DEFAULTS = {"leakyrelu": 0.01, "elu": 1.0}


@lowers(*_ACTIVATIONS)
def _activation(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    kind = _ACTIVATIONS[low.node.op]
    text = kind
    alpha = low.attr("alpha") if kind in _ALPHA_DEFAULTS else None
    if alpha is not None and float(alpha) != _ALPHA_DEFAULTS[kind]:
        text = f"{kind}({float(alpha):g})"  # the rate as the language writes it, for export
    return Act(low.emit(kind, text, [act], act.shape), act.shape, act.layout, act.groups)


@lowers("PRelu")
def _prelu(low: Lowering) -> Lowered:
    act = low.act()
    slope = low.const(1, "slope")
    if slope is None or slope.size != act.shape.c:
        raise low.error(f"only a PRelu with one slope per channel ({act.shape.c}) is "
                        f"supported")
    return Act(low.emit("prelu", "prelu", [act], act.shape), act.shape, act.layout)


@lowers("Clip")
def _clip(low: Lowering) -> Lowered:
    act = low.act()
    bounds: list[float | None] = []
    for index, name in ((1, "min"), (2, "max")):
        tensor = low.const(index, f"the {name} bound")
        if tensor is not None:
            if tensor.values is None or len(tensor.values) != 1:
                raise low.error(f"the {name} bound must be a scalar constant")
            bounds.append(float(tensor.values[0]))
        else:
            attr = low.attr(name)
            bounds.append(float(attr) if attr is not None else None)
    low_bound, high_bound = bounds
    if low_bound == 0.0 and high_bound == 6.0:
        kind, text = "relu6", "relu6"
    elif low_bound == 0.0 and high_bound is None:
        kind, text = "relu", "relu"
    else:  # costed like relu6: one comparison pair per element, no params
        kind, text = "relu6", f"clip({low_bound}, {high_bound})"
    return Act(low.emit(kind, text, [act], act.shape), act.shape, act.layout)


def _channel_vector(tensor: Tensor, act: Act) -> bool:
    """Whether ``tensor`` broadcasts one value per channel of ``act``."""
    dims = list(tensor.dims)
    while dims and dims[0] == 1:
        dims.pop(0)
    channels = act.shape.c
    if act.layout == "nchw":
        return dims == [channels, 1, 1] or (act.shape.h * act.shape.w == 1 and
                                            dims in ([channels], [channels, 1]))
    return dims == [channels]


@lowers("Add", "Mul", "Sum")
def _binary(low: Lowering) -> Lowered:
    assert low.node is not None
    op = low.node.op
    items = [low.item(name) for name in low.node.inputs]
    acts = [item for item in items if isinstance(item, Act)]
    if len(items) != 2:
        raise low.error(f"{op} of {len(items)} inputs is not supported")
    if len(acts) == 1:
        act = acts[0]
        index = items.index(act)
        constant = items[1 - index]
        assert isinstance(constant, Tensor)
        return _with_constant(low, op, act, index, constant)
    first, second = acts
    if op == "Mul":
        fused = _fuse_self_gate(low, first, second, 1) or _fuse_self_gate(low, second, first, 0)
        if fused is not None:
            return fused
    kind = "add" if op in ("Add", "Sum") else "mul"
    if first.layout != second.layout and first.shape.h * first.shape.w != 1 \
            and second.shape.h * second.shape.w != 1:
        raise low.error(f"{op} of {first.layout} and {second.layout} activations")
    if first.shape == second.shape:
        big, small = first, second
    elif second.shape == Shape(1, 1, first.shape.c) and second.layout in (first.layout, "nchw"):
        big, small = first, second
    elif first.shape == Shape(1, 1, second.shape.c) and first.layout in (second.layout, "nchw"):
        big, small = second, first
    else:
        raise low.error(f"cannot broadcast {first.shape} and {second.shape} (only equal "
                        f"shapes, or a 1x1xC gate, are supported)")
    return Act(low.emit(kind, kind, [big, small], big.shape), big.shape, big.layout)


def _fuse_self_gate(low: Lowering, x: Act, gate: Act, gate_index: int) -> Act | None:
    """``x * sigmoid(x)`` -> silu, ``x * hardsigmoid(x)`` -> hardswish (in place)."""
    step = low.producer(gate)
    if step is None or step.kind not in ("sigmoid", "hardsigmoid") or \
            step.inputs != (x.value,) or not low.single_reader(gate_index):
        return None
    kind = "silu" if step.kind == "sigmoid" else "hardswish"
    low.replace(gate, kind=kind, text=kind)
    return gate


def _with_constant(low: Lowering, op: str, act: Act, index: int, constant: Tensor) -> Act:
    if not _channel_vector(constant, act):
        raise low.error(f"{op} of an activation {act.shape} and a constant of dims "
                        f"{list(constant.dims)} is not supported (only a per-channel bias "
                        f"after a linear layer, or a per-channel scale)")
    if op == "Mul":
        return Act(low.emit("scale", "scale", [act], act.shape), act.shape, act.layout)
    step = low.producer(act)
    if step is None or step.kind not in ("conv", "deconv", "fc") or step.bias or \
            not low.single_reader(index):
        raise low.error("an Add of a per-channel constant is supported only as the bias of "
                        "the conv/linear layer just before it")
    low.replace(act, bias=True, text=step.text.replace(", nobias", ""))
    return act


@lowers("MaxPool", "AveragePool")
def _pool(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    _need_layout(low, act, "nchw")
    kind = "maxpool" if low.node.op == "MaxPool" else "avgpool"
    kernel = _pair(low.attr("kernel_shape"), 0)
    if min(kernel) < 1:
        raise low.error("the kernel_shape is missing")
    stride = _pair(low.attr("strides"), 1)
    if _pair(low.attr("dilations"), 1) != (1, 1):
        raise low.error("dilated pools are not supported")
    if len(low.node.outputs) > 1 and low.node.outputs[1]:
        raise low.error("MaxPool's indices output is not supported")
    ceil = bool(int(low.attr("ceil_mode", 0)))
    out, padding, same = _window(low, act, kernel, stride, (1, 1), ceil)
    # An average pool divides by the window inside the input when count_include_pad=0:
    # pad_mode "same" (TensorFlow's rule); "explicit" includes the padding (PyTorch's).
    excludes = kind == "avgpool" and not int(low.attr("count_include_pad", 0)) and any(padding)
    options = [f"s={stride[0]}" if stride[0] == stride[1] else f"s={stride[0]}x{stride[1]}",
               _pads_text(padding, same)] + (["ceil"] if ceil else [])
    text = f"{kind}{kernel[0]}x{kernel[1]}({', '.join(options)})"
    shape = Shape(out.h, out.w, act.shape.c)
    value = low.emit(kind, text, [act], shape, kernel_hw=kernel, stride_hw=stride,
                     padding=padding, pad_mode="same" if same or excludes else "explicit",
                     ceil=ceil)
    return Act(value, shape)


@lowers("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    _need_layout(low, act, "nchw")
    shape = Shape(1, 1, act.shape.c)
    if low.node.op == "GlobalAveragePool":
        return Act(low.emit("gap", "gap", [act], shape), shape)
    kernel = (act.shape.h, act.shape.w)
    text = f"maxpool{kernel[0]}x{kernel[1]}"
    return Act(low.emit("maxpool", text, [act], shape, kernel_hw=kernel, stride_hw=kernel),
               shape)


@lowers("ReduceMean")
def _reduce_mean(low: Lowering) -> Lowered:
    act = low.act()
    axes_tensor = low.const(1, "axes")
    raw = axes_tensor.values if axes_tensor is not None else low.attr("axes", ())
    axes = {int(axis) % 4 for axis in raw or ()}
    spatial = {"nchw": {2, 3}, "nhwc": {1, 2}}.get(act.layout)
    if spatial is None or axes != spatial:
        raise low.error("only a ReduceMean over height and width (a global average pool) "
                        "is supported")
    shape = Shape(1, 1, act.shape.c)
    value = low.emit("gap", "gap", [act], shape)
    return Act(value, shape, act.layout if int(low.attr("keepdims", 1)) else "flat")


@lowers("Resize", "Upsample")
def _resize(low: Lowering) -> Lowered:
    assert low.node is not None
    act = low.act()
    _need_layout(low, act, "nchw")
    if str(low.attr("mode", "nearest")) != "nearest":
        raise low.error("only nearest-neighbour resizing is supported")
    scales: list[float] = []
    if low.node.op == "Upsample" and low.attr("scales"):
        scales = [float(v) for v in low.attr("scales")]
    else:
        for index in ((1,) if low.node.op == "Upsample" else (2, 3)):
            tensor = low.const(index, "scales")
            if tensor is not None and tensor.values:
                values = [float(v) for v in tensor.values]
                if index == 3:  # sizes
                    dims = low.dims_of(act)
                    values = [size / dim for size, dim in zip(values, dims)]
                scales = values
                break
    if len(scales) != 4 or scales[:2] != [1.0, 1.0] or scales[2] != scales[3] \
            or scales[2] != int(scales[2]) or scales[2] < 1:
        raise low.error(f"only an integer upsampling of height and width by the same factor "
                        f"is supported (scales {scales})")
    factor = int(scales[2])
    shape = Shape(act.shape.h * factor, act.shape.w * factor, act.shape.c)
    return Act(low.emit("up", f"up{factor}", [act], shape, factor=factor), shape)
