"""MACs, params, other ops and buffers against independent brute-force counts.

MACs are counted literally, one multiply-accumulate at a time, with nested loops over output
positions (input positions for transposed convolutions), output channels, kernel taps and the
input channels of the group; every tap counts, also taps that fall on padding (the convention
costs a full kernel at every output position). Params are summed over weight tensors shaped as
PyTorch shapes them. Output sizes come from window enumeration, never from convcost.
"""

from __future__ import annotations

from math import prod

from convcost.analysis import Options, analyze_text
from convcost.cost.report import ModelReport

# -- helpers ----------------------------------------------------------------------------------


def _report(spec: str, size: tuple[int, int] | None = None, batch: int = 1) -> ModelReport:
    analysis = analyze_text(spec, Options(size=size, batch=batch, dtype="float32"))
    assert not analysis.errors, [str(error) for error in analysis.errors]
    assert len(analysis.reports) == 1
    return analysis.reports[0]


def _costs(spec: str, **kwargs: object) -> tuple[int, int, int, int]:
    """(macs, other_ops, params, buffers) of a whole model."""
    totals = _report(spec, **kwargs).totals  # type: ignore[arg-type]
    return totals.macs, totals.other_ops, totals.params, totals.buffers


def _windows(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> list[int]:
    """Start positions (in padded coordinates) of every window that fits the padded axis."""
    padded = before + size + after
    return [start for start in range(0, padded, stride) if start + dilation * (kernel - 1) < padded]


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after), found by searching the smallest total."""
    out = len(range(0, size, stride))
    total = 0
    while len(_windows(size, kernel, stride, dilation, 0, total)) < out:
        total += 1
    return total // 2, total - total // 2


def brute_conv(h: int, w: int, cin: int, cout: int, kernel: tuple[int, int],
               stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
               pad: tuple[int, int, int, int] | str = "same", groups: int = 1,
               bias: bool = True) -> tuple[int, int, int, tuple[int, int, int]]:
    """(macs, other_ops, params, output shape) of a convolution, counted tap by tap."""
    kh, kw = kernel
    if pad == "same":
        top, bottom = _same_pad(h, kh, stride[0], dilation[0])
        left, right = _same_pad(w, kw, stride[1], dilation[1])
    elif pad == "valid":
        top = bottom = left = right = 0
    else:
        assert not isinstance(pad, str)
        top, bottom, left, right = pad
    rows = _windows(h, kh, stride[0], dilation[0], top, bottom)
    cols = _windows(w, kw, stride[1], dilation[1], left, right)
    cin_g, cout_g = cin // groups, cout // groups
    macs = 0
    padding_taps = 0
    for y0 in rows:
        for x0 in cols:
            for co in range(cout):
                group = co // cout_g
                for ky in range(kh):
                    for kx in range(kw):
                        y = y0 + ky * dilation[0] - top  # input row, may be in the padding
                        x = x0 + kx * dilation[1] - left
                        on_padding = not (0 <= y < h and 0 <= x < w)
                        for _ci in range(group * cin_g, (group + 1) * cin_g):
                            macs += 1
                            padding_taps += on_padding
    assert padding_taps <= macs
    weight = (cout, cin // groups, kh, kw)  # torch.nn.Conv2d.weight
    params = prod(weight) + (cout if bias else 0)
    out = (len(rows), len(cols), cout)
    other = out[0] * out[1] * cout if bias else 0  # bias add, 1 per output element
    return macs, other, params, out


def brute_deconv(h: int, w: int, cin: int, cout: int, kernel: tuple[int, int],
                 stride: tuple[int, int] = (1, 1), groups: int = 1,
                 bias: bool = True, crop: tuple[int, int] = (0, 0),
                 dilation: tuple[int, int] = (1, 1)) -> tuple[int, int, int, tuple[int, int, int]]:
    """(macs, other_ops, params, output shape) of a transposed convolution: every input pixel
    of every input channel scatters its taps into the output channels of its group."""
    kh, kw = kernel
    cin_g, cout_g = cin // groups, cout // groups
    macs = 0
    reached_y: set[int] = set()
    reached_x: set[int] = set()
    for y in range(h):
        for x in range(w):
            for ci in range(cin):
                group = ci // cin_g
                for ky in range(kh):
                    for kx in range(kw):
                        reached_y.add(y * stride[0] + ky * dilation[0])
                        reached_x.add(x * stride[1] + kx * dilation[1])
                        for _co in range(group * cout_g, (group + 1) * cout_g):
                            macs += 1
    oh = max(reached_y) + 1 - 2 * crop[0]
    ow = max(reached_x) + 1 - 2 * crop[1]
    weight = (cin, cout // groups, kh, kw)  # torch.nn.ConvTranspose2d.weight
    params = prod(weight) + (cout if bias else 0)
    other = oh * ow * cout if bias else 0
    return macs, other, params, (oh, ow, cout)


def brute_linear(inputs: int, outputs: int, bias: bool = True) -> tuple[int, int, int]:
    """(macs, other_ops, params) of torch.nn.Linear(inputs, outputs)."""
    macs = sum(len(range(inputs)) for _o in range(outputs))  # one row of weights per output
    params = prod((outputs, inputs)) + (outputs if bias else 0)
    return macs, (outputs if bias else 0), params


def _check_conv(spec: str, *args: object, **kwargs: object) -> None:
    macs, other, params, out = brute_conv(*args, **kwargs)  # type: ignore[arg-type]
    report = _report(spec)
    assert report.output.as_list() == list(out)
    assert (report.totals.macs, report.totals.other_ops, report.totals.params,
            report.totals.buffers) == (macs, other, params, 0)
    layer = report.layers[0]
    assert (layer.macs, layer.other_ops, layer.params) == (macs, other, params)


def _check_deconv(spec: str, *args: object, **kwargs: object) -> None:
    macs, other, params, out = brute_deconv(*args, **kwargs)  # type: ignore[arg-type]
    report = _report(spec)
    assert report.output.as_list() == list(out)
    assert (report.totals.macs, report.totals.other_ops, report.totals.params,
            report.totals.buffers) == (macs, other, params, 0)


# -- convolutions -----------------------------------------------------------------------------


def test_plain_conv_same_padding() -> None:
    _check_conv("6x5x3 -> 3x3(4)", 6, 5, 3, 4, (3, 3))
    assert _costs("6x5x3 -> 3x3(4)") == (6 * 5 * 4 * 9 * 3, 6 * 5 * 4, 4 * 3 * 9 + 4, 0)


def test_conv_valid_and_explicit_padding() -> None:
    _check_conv("6x5x3 -> 3x3(4, p=valid)", 6, 5, 3, 4, (3, 3), pad="valid")
    _check_conv("6x5x3 -> 3x3(4, p=2)", 6, 5, 3, 4, (3, 3), pad=(2, 2, 2, 2))
    _check_conv("6x5x3 -> 3x3(4, p=2x0)", 6, 5, 3, 4, (3, 3), pad=(2, 2, 0, 0))


def test_strided_conv() -> None:
    _check_conv("9x8x3 -> 3x3(4, s=2)", 9, 8, 3, 4, (3, 3), stride=(2, 2))
    _check_conv("9x8x3 -> 3x3(4, s=3, p=1)", 9, 8, 3, 4, (3, 3), stride=(3, 3), pad=(1, 1, 1, 1))
    _check_conv("9x8x3 -> 3x3(4, s=2x1, p=valid)", 9, 8, 3, 4, (3, 3), stride=(2, 1), pad="valid")
    _check_conv("30x28x3 -> 7x7(2, s=2, nobias)", 30, 28, 3, 2, (7, 7), stride=(2, 2),
                bias=False)


def test_dilated_conv() -> None:
    _check_conv("9x9x2 -> 3x3(3, d=2)", 9, 9, 2, 3, (3, 3), dilation=(2, 2))
    _check_conv("9x9x2 -> 3x3(3, d=2, p=valid)", 9, 9, 2, 3, (3, 3), dilation=(2, 2), pad="valid")
    _check_conv("9x10x2 -> 3x3(3, d=2x1, s=2, p=1)", 9, 10, 2, 3, (3, 3), dilation=(2, 1),
                stride=(2, 2), pad=(1, 1, 1, 1))


def test_asymmetric_kernels() -> None:
    _check_conv("9x9x4 -> 1x7(6)", 9, 9, 4, 6, (1, 7))
    _check_conv("9x9x4 -> 7x1(6)", 9, 9, 4, 6, (7, 1))
    _check_conv("9x9x4 -> 1x7(6, p=0x3)", 9, 9, 4, 6, (1, 7), pad=(0, 0, 3, 3))
    _check_conv("9x9x4 -> 7x1(6, p=valid)", 9, 9, 4, 6, (7, 1), pad="valid")
    _check_conv("9x9x4 -> 1x3(6, s=1x2)", 9, 9, 4, 6, (1, 3), stride=(1, 2))


def test_grouped_conv() -> None:
    _check_conv("6x6x8 -> 3x3(12, g=4)", 6, 6, 8, 12, (3, 3), groups=4)
    _check_conv("6x6x8 -> 3x3(12, g=2, s=2)", 6, 6, 8, 12, (3, 3), groups=2, stride=(2, 2))
    _check_conv("6x6x6 -> 1x1(6, g=3, nobias)", 6, 6, 6, 6, (1, 1), groups=3, bias=False)
    # grouping divides the MACs by g
    assert _costs("6x6x8 -> 3x3(12, g=4)")[0] * 4 == _costs("6x6x8 -> 3x3(12)")[0]


def test_depthwise_and_depth_multiplier() -> None:
    _check_conv("7x7x8 -> 3x3(dw)", 7, 7, 8, 8, (3, 3), groups=8)
    _check_conv("7x7x8 -> 3x3(dw, s=2, nobias)", 7, 7, 8, 8, (3, 3), groups=8, stride=(2, 2),
                bias=False)
    _check_conv("7x7x8 -> 3x3(24, dw)", 7, 7, 8, 24, (3, 3), groups=8)  # multiplier 3
    _check_conv("7x7x8 -> 5x5(16, dw, p=valid)", 7, 7, 8, 16, (5, 5), groups=8, pad="valid")
    # explicit groups equal to the channel count is the same layer
    assert _costs("7x7x8 -> 3x3(24, dw)") == _costs("7x7x8 -> 3x3(24, g=8)")


def test_bias_options() -> None:
    for spec in ("6x6x4 -> 3x3(5, nobias)", "6x6x4 -> 3x3(5, bias=no)",
                 "6x6x4 -> 3x3(5, bias=false)", "6x6x4 -> 3x3(5, NoBias)"):
        _check_conv(spec, 6, 6, 4, 5, (3, 3), bias=False)
    for spec in ("6x6x4 -> 3x3(5)", "6x6x4 -> 3x3(5, bias=yes)", "6x6x4 -> 3x3(5, bias=true)"):
        _check_conv(spec, 6, 6, 4, 5, (3, 3), bias=True)


def test_conv_taps_on_padding_are_counted() -> None:
    # 1x1 input, 3x3 same conv: 8 of the 9 taps of the only window fall on padding, and all
    # count: 9 * Cin * Cout
    macs, _, _, _ = brute_conv(1, 1, 5, 7, (3, 3))
    assert macs == 9 * 5 * 7
    assert _costs("5 -> 3x3(7)")[0] == 9 * 5 * 7
    _check_conv("2x2x2 -> 3x3(3, p=2)", 2, 2, 2, 3, (3, 3), pad=(2, 2, 2, 2))


# -- transposed convolutions ------------------------------------------------------------------


def test_deconv_strides_one_two_three() -> None:
    _check_deconv("3x4x4 -> deconv3x3(5, p=valid)", 3, 4, 4, 5, (3, 3))
    _check_deconv("3x4x4 -> deconv3x3(5, s=2, p=valid)", 3, 4, 4, 5, (3, 3), stride=(2, 2))
    _check_deconv("3x4x4 -> deconv3x3(5, s=3, p=valid)", 3, 4, 4, 5, (3, 3), stride=(3, 3))
    _check_deconv("3x4x4 -> deconv4x4(5, s=2, p=1)", 3, 4, 4, 5, (4, 4), stride=(2, 2),
                  crop=(1, 1))
    _check_deconv("3x4x4 -> deconv2x3(5, s=2x1, p=0x1, nobias)", 3, 4, 4, 5, (2, 3),
                  stride=(2, 1), crop=(0, 1), bias=False)
    _check_deconv("3x4x4 -> deconv3x3(5, d=2, p=valid)", 3, 4, 4, 5, (3, 3), dilation=(2, 2))


def test_deconv_groups() -> None:
    _check_deconv("3x3x6 -> deconv2x2(4, s=2, g=2, p=valid)", 3, 3, 6, 4, (2, 2),
                  stride=(2, 2), groups=2)
    _check_deconv("3x3x6 -> deconv3x3(9, s=3, g=3, p=valid)", 3, 3, 6, 9, (3, 3),
                  stride=(3, 3), groups=3)
    _check_deconv("3x3x6 -> deconv2x2(6, s=2, dw, p=valid)", 3, 3, 6, 6, (2, 2),
                  stride=(2, 2), groups=6)


def test_deconv_same_macs_count_input_positions() -> None:
    # 'same' only changes the crop; MACs count input positions, the bias counts outputs.
    report = _report("3x4x4 -> deconv3x3(5, s=2)")
    macs, _, params, _ = brute_deconv(3, 4, 4, 5, (3, 3), stride=(2, 2))
    assert report.output.as_list() == [6, 8, 5]
    assert (report.totals.macs, report.totals.params) == (macs, params)
    assert report.totals.other_ops == 6 * 8 * 5


# -- fully connected --------------------------------------------------------------------------


def test_fc_per_position_and_on_a_map() -> None:
    macs, other, params = brute_linear(64, 10)
    assert _costs("64 -> fc(10)") == (macs, other, params, 0)
    assert _costs("64 -> linear(10)") == (macs, other, params, 0)
    # flattens H*W*C
    macs, other, params = brute_linear(3 * 4 * 5, 7)
    assert _costs("3x4x5 -> fc(7)") == (macs, other, params, 0)
    macs, other, params = brute_linear(3 * 4 * 5, 7, bias=False)
    assert _costs("3x4x5 -> fc(7, nobias)") == (macs, 0, params, 0)
    assert _costs("3x4x5 -> fc(7, bias=no)") == (macs, 0, params, 0)
    # per position fc(N) is 1x1(N)
    assert _costs("64 -> fc(10)") == _costs("64 -> 1x1(10)")


def test_fc_params_grow_with_size() -> None:
    macs, other, params = brute_linear(14 * 14 * 512, 4096)
    assert _costs("7x7x512 -> fc(4096)", size=(14, 14)) == (macs, other, params, 0)
    assert macs == 411_041_792 and params == 411_045_888


# -- seeds ------------------------------------------------------------------------------------


def test_seed_bottleneck_pair() -> None:
    direct = _costs("256 -> 4x4(256)")
    bottleneck = _costs("256 -> 1x1(64) -> 4x4(256)")
    assert direct[0] == 1_048_576 and direct[2] == 1_048_832
    assert bottleneck[0] == 278_528 and bottleneck[2] == 278_848
    assert direct[0] * 17 == bottleneck[0] * 64  # exactly 64/17
    # independently: per position, a 4x4 'same' conv on 1x1 counts all 16 taps
    m1, _, p1, _ = brute_conv(1, 1, 256, 256, (4, 4))
    assert (direct[0], direct[2]) == (m1, p1)
    m2, _, p2, _ = brute_conv(1, 1, 256, 64, (1, 1))
    m3, _, p3, _ = brute_conv(1, 1, 64, 256, (4, 4))
    assert (bottleneck[0], bottleneck[2]) == (m2 + m3, p2 + p3)


def test_fc_equals_full_kernel_conv() -> None:
    fc = _costs("7x7x512 -> fc(4096)")
    conv = _costs("7x7x512 -> 7x7(4096, p=valid)")
    assert fc[0] == conv[0] == 102_760_448
    assert fc[2] == conv[2] == 102_764_544
    assert brute_linear(7 * 7 * 512, 4096)[0] == fc[0]
    # on a 14x14 map the conv slides: 8x8 outputs, params unchanged, 64x the MACs
    report = _report("7x7x512 -> 7x7(4096, p=valid)", size=(14, 14))
    assert report.output.as_list() == [8, 8, 4096]
    assert report.totals.params == 102_764_544
    assert report.totals.macs == 64 * 102_760_448 == 6_576_668_672


# -- parameter-free and element-wise layers ---------------------------------------------------


def _brute_pool_ops(h: int, w: int, c: int, kernel: tuple[int, int], stride: tuple[int, int],
                    pad: tuple[int, int, int, int]) -> int:
    ops = 0
    for _y in _windows(h, kernel[0], stride[0], 1, pad[0], pad[1]):
        for _x in _windows(w, kernel[1], stride[1], 1, pad[2], pad[3]):
            for _c in range(c):
                for _ky in range(kernel[0]):
                    for _kx in range(kernel[1]):
                        ops += 1
    return ops


def test_pools_cost_the_kernel_per_output_element() -> None:
    assert _costs("8x8x3 -> maxpool2x2") == (0, _brute_pool_ops(8, 8, 3, (2, 2), (2, 2),
                                                                 (0, 0, 0, 0)), 0, 0)
    same = _same_pad(7, 3, 2, 1)
    pad = (same[0], same[1], same[0], same[1])
    assert _costs("7x7x3 -> maxpool3x3(s=2)") == (0, _brute_pool_ops(7, 7, 3, (3, 3), (2, 2), pad),
                                                  0, 0)
    assert _costs("7x7x3 -> avgpool3x3(s=1, p=1)") == \
        (0, _brute_pool_ops(7, 7, 3, (3, 3), (1, 1), (1, 1, 1, 1)), 0, 0)
    assert _costs("7x9x3 -> avgpool2x3(p=valid)") == \
        (0, _brute_pool_ops(7, 9, 3, (2, 3), (2, 3), (0, 0, 0, 0)), 0, 0)
    assert _costs("7x7x3 -> maxpool3x3(s=2, p=valid)")[1] == 3 * 3 * 3 * 9
    # ceil: the extra window still costs a full kernel
    assert _costs("6x6x2 -> maxpool3x3(s=2, p=valid, ceil)")[1] == 3 * 3 * 2 * 9


def test_gap_bn_and_activations() -> None:
    assert _costs("7x6x5 -> gap") == (0, 7 * 6 * 5, 0, 0)
    assert _costs("7x6x5 -> globalavgpool") == (0, 7 * 6 * 5, 0, 0)
    # BatchNorm2d(5): weight + bias learnable, running_mean + running_var buffers
    bn_params = prod((5,)) + prod((5,))
    bn_buffers = prod((5,)) + prod((5,))
    assert _costs("7x6x5 -> bn") == (0, 2 * 7 * 6 * 5, bn_params, bn_buffers)
    for word in ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "softmax"):
        assert _costs(f"7x6x5 -> {word}") == (0, 7 * 6 * 5, 0, 0), word
    for word in ("dropout", "dropout(0.5)", "id", "up2"):
        assert _costs(f"7x6x5 -> {word}") == (0, 0, 0, 0), word


def test_concat_and_residual_add() -> None:
    # concat is free: the branch costs only
    branch = _costs("4x4x3 -> [relu | id]")
    assert branch == (0, 4 * 4 * 3, 0, 0)
    # the add costs 1 per output element
    assert _costs("4x4x3 -> res[relu]") == (0, 2 * 4 * 4 * 3, 0, 0)
    assert _costs("4x4x3 -> res[id]") == (0, 4 * 4 * 3, 0, 0)
    # projection shortcut
    macs_b, other_b, params_b, _ = brute_conv(4, 4, 3, 6, (3, 3), stride=(2, 2))
    macs_s, other_s, params_s, _ = brute_conv(4, 4, 3, 6, (1, 1), stride=(2, 2), bias=False)
    assert _costs("4x4x3 -> res[3x3(6, s=2) | 1x1(6, s=2, nobias)]") == \
        (macs_b + macs_s, other_b + other_s + 2 * 2 * 6, params_b + params_s, 0)


def test_per_layer_reports_sum_to_totals() -> None:
    report = _report("8x8x3 -> 3x3(4) -> bn -> relu -> [1x1(2) | maxpool3x3(s=1)] -> "
                     "res[3x3(6) | 1x1(6)] -> gap -> fc(5)")
    assert sum(layer.macs for layer in report.layers) == report.totals.macs
    assert sum(layer.other_ops for layer in report.layers) == report.totals.other_ops
    assert sum(layer.params for layer in report.layers) == report.totals.params
    assert sum(layer.buffers for layer in report.layers) == report.totals.buffers
    assert [layer.kind for layer in report.layers] == [
        "conv", "bn", "relu", "conv", "maxpool", "concat", "conv", "conv", "add", "gap", "fc"]
    m1, o1, p1, _ = brute_conv(8, 8, 3, 4, (3, 3))
    m2, o2, p2, _ = brute_conv(8, 8, 4, 2, (1, 1))
    m3, o3, p3, _ = brute_conv(8, 8, 6, 6, (3, 3))
    m4, o4, p4, _ = brute_conv(8, 8, 6, 6, (1, 1))
    m5, o5, p5 = brute_linear(6, 5)
    elements = 8 * 8 * 4
    other = (o1 + 2 * elements + elements + o2 + 9 * elements + o3 + o4 + 8 * 8 * 6
             + 8 * 8 * 6 + o5)
    assert (report.totals.macs, report.totals.other_ops, report.totals.params,
            report.totals.buffers) == (m1 + m2 + m3 + m4 + m5, other,
                                       p1 + 8 + p2 + p3 + p4 + p5, 8)


def test_batch_multiplies_ops_not_params() -> None:
    spec = "8x8x3 -> 3x3(4) -> bn -> relu -> maxpool2x2 -> fc(5)"
    one = _report(spec, batch=1)
    three = _report(spec, batch=3)
    assert three.totals.macs == 3 * one.totals.macs
    assert three.totals.other_ops == 3 * one.totals.other_ops
    assert three.totals.flops == 2 * three.totals.macs
    assert three.totals.params == one.totals.params
    assert three.totals.buffers == one.totals.buffers
    assert three.totals.param_bytes == one.totals.param_bytes
    for a, b in zip(one.layers, three.layers):
        assert (b.macs, b.other_ops, b.params) == (3 * a.macs, 3 * a.other_ops, a.params)
    m1, o1, p1, _ = brute_conv(8, 8, 3, 4, (3, 3))
    m2, o2, p2 = brute_linear(4 * 4 * 4, 5)
    assert three.totals.macs == 3 * (m1 + m2)
    assert three.totals.params == p1 + 8 + p2


def test_flops_are_twice_macs() -> None:
    report = _report("6x5x3 -> 3x3(4) -> fc(3)")
    assert report.totals.flops == 2 * report.totals.macs
    assert all(layer.flops == 2 * layer.macs for layer in report.layers)
