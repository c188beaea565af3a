"""Output shapes checked against independent brute-force computations, not convcost's formulas.

Spatial sizes are recomputed by enumerating window start positions over the padded axis
(convolutions, pools, PyTorch's ``ceil_mode``), by searching for the smallest TensorFlow
``same`` padding, and by building the full scatter extent of a transposed convolution.
"""

from __future__ import annotations

import itertools

from convcost.analysis import Analysis, Options, analyze_text
from convcost.model.program import Shape
from convcost.model.program import Step as Layer

# -- helpers ----------------------------------------------------------------------------------


def _analyze(spec: str, size: tuple[int, int] | None = None) -> Analysis:
    return analyze_text(spec, Options(size=size, batch=1, dtype="float32"))


def _ok(spec: str, size: tuple[int, int] | None = None) -> Analysis:
    analysis = _analyze(spec, size)
    assert not analysis.errors, (spec, [str(error) for error in analysis.errors])
    assert len(analysis.reports) == 1
    return analysis


def _first(spec: str, size: tuple[int, int] | None = None) -> Layer:
    node = _ok(spec, size).programs[0].steps[0]
    assert isinstance(node, Layer)
    return node


def _output(spec: str, size: tuple[int, int] | None = None) -> Shape:
    return _ok(spec, size).reports[0].output


def _fails(spec: str, size: tuple[int, int] | None = None) -> str:
    analysis = _analyze(spec, size)
    assert analysis.errors and not analysis.reports, spec
    return str(analysis.errors[0])


def brute_windows(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Windows that fit on an axis padded by ``pad`` on both sides (floor mode), by enumeration:
    every start p = 0, s, 2s, ... whose dilated window's last tap is still inside."""
    padded = size + 2 * pad
    return sum(1 for start in range(0, padded, stride)
               if start + dilation * (kernel - 1) < padded)


def brute_windows_asym(size: int, kernel: int, stride: int, dilation: int,
                       before: int, after: int) -> int:
    """Like :func:`brute_windows` for padding that differs before and after."""
    padded = before + size + after
    count = 0
    start = 0
    while start < padded:
        if start + dilation * (kernel - 1) <= padded - 1:
            count += 1
        start += stride
    return count


def brute_ceil_windows(size: int, kernel: int, stride: int, pad: int) -> int:
    """PyTorch ``ceil_mode`` by enumeration: windows are laid at 0, s, 2s, ... as long as the
    previous window did not already reach the last padded element (so the last one may run
    past the end), and a window may not start inside the right padding (start < I + P)."""
    padded = size + 2 * pad
    count = 0
    for start in range(0, size + pad, stride):
        previous_end = start - stride + kernel - 1  # last element of the previous window
        if previous_end < padded - 1:
            count += 1
    return count


def brute_same(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(output, smallest total padding) for TensorFlow ``same``: the output is the number of
    stride steps that start inside the input; the padding is the least that fits them all."""
    out = len(range(0, size, stride))  # ceil(size / stride), by counting
    total = 0
    while brute_windows_asym(size, kernel, stride, dilation, 0, total) < out:
        total += 1
    return out, total


def brute_deconv_full(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Extent of a transposed convolution's full output: every input pixel i scatters its
    kernel taps k to i*s + d*k; the extent is the largest position reached plus one."""
    reached = {i * stride + dilation * k for i in range(size) for k in range(kernel)}
    assert min(reached) == 0
    return max(reached) + 1


GRID = list(itertools.product(range(1, 13), range(1, 6), range(1, 4), range(1, 3), range(0, 3)))


def _partner(index: int) -> tuple[int, int, int, int, int]:
    """A second grid point for the W axis, so that H and W differ (asymmetric everything)."""
    return GRID[(index * 7 + 131) % len(GRID)]


# -- the brute-force helpers themselves -------------------------------------------------------


def test_brute_force_helpers_on_hand_examples() -> None:
    # 224 -> 7x7 s2 p3 -> 112; 5 -> 3x3 s1 valid -> 3; 7 -> 3x3 d2 valid -> 3.
    assert brute_windows(224, 7, 2, 1, 3) == 112
    assert brute_windows(5, 3, 1, 1, 0) == 3
    assert brute_windows(7, 3, 1, 2, 0) == 3
    # SqueezeNet: 109 -> maxpool 3 s2 ceil -> 54; 54 -> 27; 27 -> 13.
    assert brute_ceil_windows(109, 3, 2, 0) == 54
    assert brute_ceil_windows(54, 3, 2, 0) == 27
    assert brute_ceil_windows(27, 3, 2, 0) == 13
    # PyTorch: 3 wide, kernel 2, s2, p1, ceil -> 2 (the third window would start in the padding)
    assert brute_ceil_windows(3, 2, 2, 1) == 2
    assert brute_same(224, 7, 2, 1) == (112, 5)
    assert brute_same(5, 1, 3, 1) == (2, 0)
    assert brute_deconv_full(4, 4, 2, 1) == 10
    assert brute_deconv_full(3, 3, 1, 2) == 7


# -- convolutions -----------------------------------------------------------------------------


def test_conv_explicit_padding_grid_matches_window_enumeration() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, dh, ph) in enumerate(GRID):
        iw, kw, sw, dw, pw = _partner(index)
        spec = f"{ih}x{iw}x2 -> {kh}x{kw}(3, s={sh}x{sw}, d={dh}x{dw}, p={ph}x{pw})"
        oh = brute_windows(ih, kh, sh, dh, ph)
        ow = brute_windows(iw, kw, sw, dw, pw)
        analysis = _analyze(spec)
        if oh < 1 or ow < 1:
            if analysis.reports or not analysis.errors:
                wrong.append((spec, "expected an error", analysis.reports[0].output))
            continue
        if analysis.errors:
            wrong.append((spec, (oh, ow), str(analysis.errors[0])))
            continue
        layer = analysis.programs[0].steps[0]
        assert isinstance(layer, Layer)
        if layer.output != Shape(oh, ow, 3) or layer.padding != (ph, ph, pw, pw):
            wrong.append((spec, (oh, ow), layer.output, layer.padding))
    assert wrong == []


def test_conv_scalar_options_apply_to_both_axes() -> None:
    wrong: list[object] = []
    for size, kernel, stride, dilation, pad in GRID:
        spec = f"{size}x{size}x1 -> {kernel}x{kernel}(2, s={stride}, d={dilation}, p={pad})"
        out = brute_windows(size, kernel, stride, dilation, pad)
        analysis = _analyze(spec)
        if out < 1:
            if not analysis.errors:
                wrong.append((spec, "expected an error"))
            continue
        if analysis.errors or analysis.reports[0].output != Shape(out, out, 2):
            wrong.append((spec, out, analysis.errors or analysis.reports[0].output))
    assert wrong == []


def test_conv_valid_is_zero_padding() -> None:
    wrong: list[object] = []
    for size, kernel, stride, dilation, _ in GRID:
        spec = f"{size}x{size + 1}x1 -> {kernel}x{kernel}(1, s={stride}, d={dilation}, p=valid)"
        oh = brute_windows(size, kernel, stride, dilation, 0)
        ow = brute_windows(size + 1, kernel, stride, dilation, 0)
        analysis = _analyze(spec)
        if oh < 1 or ow < 1:
            if not analysis.errors:
                wrong.append((spec, "expected an error"))
            continue
        if analysis.errors or analysis.reports[0].output != Shape(oh, ow, 1):
            wrong.append((spec, (oh, ow), analysis.errors or analysis.reports[0].output))
    assert wrong == []


def test_conv_same_grid_is_ceil_with_smallest_tensorflow_padding() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, dh, _) in enumerate(GRID):
        iw, kw, sw, dw, _ = _partner(index)
        spec = f"{ih}x{iw}x1 -> {kh}x{kw}(1, s={sh}x{sw}, d={dh}x{dw})"
        oh, total_h = brute_same(ih, kh, sh, dh)
        ow, total_w = brute_same(iw, kw, sw, dw)
        layer = _first(spec)
        top, bottom, left, right = layer.padding
        if (layer.output != Shape(oh, ow, 1) or top + bottom != total_h
                or left + right != total_w or (top, left) != (total_h // 2, total_w // 2)):
            wrong.append((spec, (oh, ow, total_h, total_w), layer.output, layer.padding))
            continue
        # the chosen padding really produces exactly that many windows (TF puts the odd
        # pixel at the bottom/right)
        if brute_windows_asym(ih, kh, sh, dh, top, bottom) != oh or \
                brute_windows_asym(iw, kw, sw, dw, left, right) != ow:
            wrong.append((spec, "padding does not give the output size", layer.padding))
    assert wrong == []


def test_same_is_the_default_padding() -> None:
    assert _output("7x7x3 -> 3x3(8, s=2)") == Shape(4, 4, 8)
    assert _output("7x7x3 -> 3x3(8, s=2, p=same)") == Shape(4, 4, 8)
    assert _output("7x7x3 -> 3x3(8, s=2, P=SAME)") == Shape(4, 4, 8)
    assert _output("224x224x3 -> 7x7(64, s=2)") == Shape(112, 112, 64)


def test_asymmetric_kernels_strides_and_padding() -> None:
    assert _output("17x17x8 -> 1x7(16)") == Shape(17, 17, 16)
    assert _output("17x17x8 -> 7x1(16, p=valid)") == Shape(11, 17, 16)
    assert _output("17x17x8 -> 1x7(16, p=valid)") == Shape(17, 11, 16)
    assert _output("17x17x8 -> 1x3(4, p=0x1)") == Shape(17, 17, 4)
    assert _output("17x17x8 -> 3x1(4, p=1x0)") == Shape(17, 17, 4)
    assert _output("10x10x8 -> 3x3(4, s=2x1, p=1)") == Shape(5, 10, 4)
    assert _output("10x10x8 -> 3x3(4, s=1x3, p=valid)") == Shape(8, 3, 4)
    # PhxPw: 2 rows top and bottom, none left and right
    layer = _first("6x6x1 -> 3x3(1, p=2x0)")
    assert layer.output == Shape(brute_windows(6, 3, 1, 1, 2), brute_windows(6, 3, 1, 1, 0), 1)
    assert layer.output == Shape(8, 4, 1)
    assert layer.padding == (2, 2, 0, 0)
    # dilation 2x1
    assert _output("9x9x1 -> 3x3(1, d=2x1, p=valid)") == Shape(5, 7, 1)


# -- pools ------------------------------------------------------------------------------------


def test_pool_explicit_padding_grid() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, _, ph) in enumerate(GRID):
        iw, kw, sw, _, pw = _partner(index)
        for kind in ("maxpool", "avgpool"):
            spec = f"{ih}x{iw}x5 -> {kind}{kh}x{kw}(s={sh}x{sw}, p={ph}x{pw})"
            oh = brute_windows(ih, kh, sh, 1, ph)
            ow = brute_windows(iw, kw, sw, 1, pw)
            analysis = _analyze(spec)
            # Like PyTorch, pool padding above half the kernel is refused.
            if oh < 1 or ow < 1 or ph > kh // 2 or pw > kw // 2:
                if not analysis.errors:
                    wrong.append((spec, "expected an error"))
                continue
            if analysis.errors or analysis.reports[0].output != Shape(oh, ow, 5):
                wrong.append((spec, (oh, ow), analysis.errors or analysis.reports[0].output))
    assert wrong == []


def test_pool_stride_defaults_to_kernel() -> None:
    wrong: list[object] = []
    for size, kernel, _, _, pad in GRID:
        spec = f"{size}x{size}x2 -> maxpool{kernel}x{kernel}(p={pad})"
        out = brute_windows(size, kernel, kernel, 1, pad)
        analysis = _analyze(spec)
        if out < 1 or pad > kernel // 2:
            if not analysis.errors:
                wrong.append((spec, "expected an error"))
            continue
        if analysis.errors or analysis.reports[0].output != Shape(out, out, 2):
            wrong.append((spec, out, analysis.errors or analysis.reports[0].output))
        # same padding with the default stride: ceil(I / K)
        out_same, total = brute_same(size, kernel, kernel, 1)
        layer = _first(f"{size}x{size}x2 -> avgpool{kernel}x{kernel}")
        if layer.output != Shape(out_same, out_same, 2) or \
                layer.padding[0] + layer.padding[1] != total:
            wrong.append(("same", size, kernel, layer.output, layer.padding))
    assert wrong == []
    assert _output("8x8x3 -> maxpool2x2") == Shape(4, 4, 3)
    assert _output("7x9x3 -> maxpool2x3") == Shape(4, 3, 3)


def test_pool_same_grid() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, _, _) in enumerate(GRID):
        iw, kw, sw, _, _ = _partner(index)
        spec = f"{ih}x{iw}x1 -> maxpool{kh}x{kw}(s={sh}x{sw}, p=same)"
        oh, total_h = brute_same(ih, kh, sh, 1)
        ow, total_w = brute_same(iw, kw, sw, 1)
        layer = _first(spec)
        top, bottom, left, right = layer.padding
        if layer.output != Shape(oh, ow, 1) or (top, bottom) != (total_h // 2, total_h - total_h // 2) \
                or (left, right) != (total_w // 2, total_w - total_w // 2):
            wrong.append((spec, (oh, ow, total_h, total_w), layer.output, layer.padding))
    assert wrong == []


def test_pool_ceil_mode_grid_matches_pytorch_rule() -> None:
    # Only configurations PyTorch accepts (padding at most half the kernel): beyond that the
    # contract's formula, which subtracts at most one window, and its stated rule ("no window
    # may start inside the right padding") part ways, e.g. maxpool1x1(p=2, ceil).
    legal = [point for point in GRID if 2 * point[4] <= point[1]]
    assert len(legal) == 12 * 3 * 2 * (1 + 2 + 2 + 3 + 3)  # P=0 always, P=1 from K=2, P=2 from K=4
    wrong: list[object] = []
    for index, (ih, kh, sh, _, ph) in enumerate(legal):
        iw, kw, sw, _, pw = legal[(index * 7 + 131) % len(legal)]
        spec = f"{ih}x{iw}x1 -> maxpool{kh}x{kw}(s={sh}x{sw}, p={ph}x{pw}, ceil)"
        oh = brute_ceil_windows(ih, kh, sh, ph)
        ow = brute_ceil_windows(iw, kw, sw, pw)
        analysis = _analyze(spec)
        if oh < 1 or ow < 1:
            if not analysis.errors:
                wrong.append((spec, "expected an error", analysis.reports[0].output))
            continue
        if analysis.errors or analysis.reports[0].output != Shape(oh, ow, 1):
            wrong.append((spec, (oh, ow), analysis.errors or analysis.reports[0].output))
    assert wrong == []


def test_pool_ceil_with_valid_padding_and_known_cases() -> None:
    assert _output("109x109x96 -> maxpool3x3(s=2, p=valid, ceil)") == Shape(54, 54, 96)
    assert _output("109x109x96 -> maxpool3x3(s=2, p=valid)") == Shape(54, 54, 96)
    assert _output("54x54x96 -> maxpool3x3(s=2, p=valid, ceil)") == Shape(27, 27, 96)
    assert _output("54x54x96 -> maxpool3x3(s=2, p=valid)") == Shape(26, 26, 96)
    assert _output("112x112x64 -> maxpool3x3(s=2, p=valid, ceil)") == Shape(56, 56, 64)
    # ceil with 'same' padding is an error
    assert "ceil" in _fails("8x8x1 -> maxpool3x3(s=2, ceil)")


# -- transposed convolutions ------------------------------------------------------------------


def test_deconv_explicit_padding_grid_matches_scatter_extent() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, dh, ph) in enumerate(GRID):
        iw, kw, sw, dw, pw = _partner(index)
        spec = f"{ih}x{iw}x2 -> deconv{kh}x{kw}(4, s={sh}x{sw}, d={dh}x{dw}, p={ph}x{pw})"
        full_h = brute_deconv_full(ih, kh, sh, dh)
        full_w = brute_deconv_full(iw, kw, sw, dw)
        oh, ow = full_h - 2 * ph, full_w - 2 * pw
        analysis = _analyze(spec)
        if oh < 1 or ow < 1:
            if not analysis.errors:
                wrong.append((spec, "expected an error", analysis.reports[0].output))
            continue
        if analysis.errors:
            wrong.append((spec, (oh, ow), str(analysis.errors[0])))
            continue
        layer = analysis.programs[0].steps[0]
        assert isinstance(layer, Layer)
        if layer.output != Shape(oh, ow, 4) or layer.padding != (ph, ph, pw, pw):
            wrong.append((spec, (oh, ow), layer.output, layer.padding))
    assert wrong == []


def test_deconv_same_grid_multiplies_by_stride() -> None:
    wrong: list[object] = []
    for index, (ih, kh, sh, dh, _) in enumerate(GRID):
        iw, kw, sw, dw, _ = _partner(index)
        spec = f"{ih}x{iw}x2 -> deconv{kh}x{kw}(4, s={sh}x{sw}, d={dh}x{dw})"
        oh, ow = ih * sh, iw * sw
        layer = _first(spec)
        full_h = brute_deconv_full(ih, kh, sh, dh)
        full_w = brute_deconv_full(iw, kw, sw, dw)
        top, bottom, left, right = layer.padding
        # the crop (negative: zeros appended) turns the full scatter extent into I*s
        if layer.output != Shape(oh, ow, 4) or full_h - top - bottom != oh or \
                full_w - left - right != ow:
            wrong.append((spec, (oh, ow), layer.output, layer.padding))
    assert wrong == []


def test_deconv_valid_and_known_sizes() -> None:
    assert _output("4x4x8 -> deconv2x2(16, s=2, p=valid)") == Shape(8, 8, 16)
    assert _output("4x4x8 -> deconv4x4(16, s=2, p=1)") == Shape(8, 8, 16)  # DCGAN upsampler
    assert _output("4x4x8 -> deconv3x3(16, s=2, p=valid)") == Shape(9, 9, 16)
    assert _output("4x4x8 -> deconv3x3(16, s=3)") == Shape(12, 12, 16)
    assert _output("5x3x8 -> deconv3x1(16, s=2x1, p=valid)") == Shape(11, 3, 16)


# -- channels ---------------------------------------------------------------------------------


def test_depthwise_channels() -> None:
    assert _output("8x8x16 -> 3x3(dw)") == Shape(8, 8, 16)
    assert _output("8x8x16 -> 3x3(dw, s=2)") == Shape(4, 4, 16)
    assert _output("8x8x16 -> 3x3(16, dw)") == Shape(8, 8, 16)
    assert _output("8x8x16 -> 3x3(48, dw)") == Shape(8, 8, 48)  # depth multiplier 3
    assert _first("8x8x16 -> 3x3(48, dw)").groups == 16
    assert _first("8x8x16 -> 5x5(dw, p=valid)").output == Shape(4, 4, 16)
    _fails("8x8x16 -> 3x3(40, dw)")  # not a multiple of 16
    _fails("8x8x16 -> 3x3(8, dw)")
    _fails("8x8x16 -> 3x3(dw, g=4)")  # dw and g= together


def test_grouped_channels() -> None:
    assert _output("8x8x16 -> 3x3(32, g=4)") == Shape(8, 8, 32)
    assert _first("8x8x16 -> 3x3(32, g=4)").groups == 4
    assert _output("8x8x16 -> 1x1(8, g=8)") == Shape(8, 8, 8)
    assert _output("8x8x16 -> deconv2x2(8, s=2, g=2)") == Shape(16, 16, 8)
    _fails("8x8x16 -> 3x3(30, g=4)")  # output not divisible
    _fails("8x8x18 -> 3x3(32, g=4)")  # input not divisible


def test_branches_concatenate_channels() -> None:
    assert _output("10x10x4 -> [1x1(8) | 3x3(16) | maxpool3x3(s=1) | id]") == Shape(10, 10, 32)
    assert _output("10x10x4 -> [3x3(8, s=2) | maxpool2x2]") == Shape(5, 5, 12)
    assert _output("10x10x4 -> [id | [1x1(2) | 1x1(3)] -> 1x1(5)]") == Shape(10, 10, 9)
    assert _output("28x28x192 -> [1x1(64) | 1x1(96) -> 3x3(128) | 1x1(16) -> 5x5(32) | "
                   "maxpool3x3(s=1) -> 1x1(32)]") == Shape(28, 28, 256)
    _fails("10x10x4 -> [1x1(8) | 3x3(8, s=2)]")  # spatial sizes disagree


def test_residual_channels() -> None:
    assert _output("8x8x16 -> res[3x3(16) -> relu -> 3x3(16)]") == Shape(8, 8, 16)
    assert _output("8x8x16 -> res[3x3(32, s=2) -> 3x3(32) | 1x1(32, s=2)]") == Shape(4, 4, 32)
    assert _output("8x8x16 -> res[id]") == Shape(8, 8, 16)
    _fails("8x8x16 -> res[3x3(32)]")  # identity shortcut cannot add 16 to 32 channels
    _fails("8x8x16 -> res[3x3(32) | 1x1(32, s=2)]")  # spatial sizes disagree


def test_up_gap_fc_and_element_wise_shapes() -> None:
    assert _output("5x7x3 -> up3") == Shape(15, 21, 3)
    assert _output("5x7x3 -> up1") == Shape(5, 7, 3)
    assert _output("7x9x5 -> gap") == Shape(1, 1, 5)
    assert _output("7x9x5 -> globalavgpool") == Shape(1, 1, 5)
    assert _output("7x7x512 -> fc(10)") == Shape(1, 1, 10)
    assert _output("7x7x512 -> linear(10)") == Shape(1, 1, 10)
    assert _output("64 -> fc(10)") == Shape(1, 1, 10)
    for word in ("bn", "relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "softmax",
                 "dropout", "dropout(0.5)", "id"):
        assert _output(f"6x5x3 -> {word}") == Shape(6, 5, 3), word


def test_every_layer_records_its_input_shape() -> None:
    analysis = _ok("8x8x3 -> 3x3(4, s=2) -> [1x1(2) | id] -> up2 -> gap -> fc(7)")
    layers = analysis.reports[0].layers
    assert [(layer.input, layer.output) for layer in layers] == [
        (Shape(8, 8, 3), Shape(4, 4, 4)),
        (Shape(4, 4, 4), Shape(4, 4, 2)),
        (Shape(4, 4, 4), Shape(4, 4, 4)),
        (Shape(4, 4, 4), Shape(4, 4, 6)),
        (Shape(4, 4, 6), Shape(8, 8, 6)),
        (Shape(8, 8, 6), Shape(1, 1, 6)),
        (Shape(1, 1, 6), Shape(1, 1, 7)),
    ]


# -- inputs and --size ------------------------------------------------------------------------


def test_per_position_input_is_one_by_one() -> None:
    analysis = _ok("256 -> 1x1(64) -> 4x4(256)")
    assert analysis.reports[0].input == Shape(1, 1, 256)
    assert analysis.reports[0].output == Shape(1, 1, 256)
    # 3x3 'same' on 1x1 stays 1x1
    assert _output("256 -> 3x3(64)") == Shape(1, 1, 64)
    message = _fails("256 -> 3x3(64, p=valid)")
    assert "--size" in message


def test_size_replaces_input_height_and_width() -> None:
    assert _ok("256 -> 1x1(64)", size=(56, 40)).reports[0].input == Shape(56, 40, 256)
    assert _output("256 -> 1x1(64) -> 4x4(256)", size=(56, 40)) == Shape(56, 40, 256)
    # also replaces an HxWxC input's size
    assert _ok("7x7x512 -> relu", size=(14, 14)).reports[0].input == Shape(14, 14, 512)
    assert _output("7x7x512 -> 7x7(4096, p=valid)", size=(14, 14)) == Shape(8, 8, 4096)
    assert _output("7x7x512 -> fc(4096)", size=(14, 14)) == Shape(1, 1, 4096)
    # a per-position chain that needs a size works once it gets one
    assert _output("256 -> 3x3(64, p=valid)", size=(5, 6)) == Shape(3, 4, 64)
    # strided chain over a larger image
    out_h = brute_windows(brute_same(100, 3, 2, 1)[0], 3, 2, 1, 0)
    assert _output("3 -> 3x3(8, s=2) -> 3x3(8, s=2, p=valid)", size=(100, 100)) == \
        Shape(out_h, out_h, 8)


def test_output_below_one_names_the_layer_and_sizes() -> None:
    message = _fails("4x4x3 -> 5x5(8, p=valid)")
    assert "5x5(8, p=valid)" in message
    assert "4x4" in message
    _fails("2x2x3 -> maxpool3x3(s=1, p=valid)")
    assert brute_deconv_full(3, 5, 1, 1) - 2 * 4 < 1
    _fails("3x3x3 -> deconv5x5(8, p=4)")
