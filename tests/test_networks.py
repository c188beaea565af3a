"""Whole networks: the example files against published totals, and every total recomputed
independently here from a plain-Python description of the network (PyTorch's size formula
floor((I + 2P - K) / s) + 1 and its ceil_mode rule, not convcost's code)."""

from __future__ import annotations

import math
from pathlib import Path

from convcost.analysis import Analysis, Options, analyze_source, analyze_text
from convcost.cost.report import ModelReport
from convcost.inputs import collect
from convcost.model.program import Shape

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str, options: Options = Options()) -> dict[str, ModelReport]:
    inputs, errors = collect([str(EXAMPLES / f"{name}.convcost")])
    assert errors == [] and len(inputs) == 1
    analysis = analyze_source(inputs[0].source, options, bare_names=inputs[0].bare_names)
    assert analysis.errors == [], [str(error) for error in analysis.errors]
    return {model.name: model for model in analysis.reports}


def _chain(spec: str, options: Options = Options()) -> ModelReport:
    analysis: Analysis = analyze_text(spec, options)
    assert analysis.errors == [], [str(error) for error in analysis.errors]
    return analysis.reports[0]


def out(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """PyTorch's Conv2d / MaxPool2d output size (floor mode)."""
    return (size + 2 * pad - kernel) // stride + 1


def out_ceil(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """PyTorch's ceil_mode output size."""
    result = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if (result - 1) * stride >= size + pad:
        result -= 1
    return result


class Tally:
    """MACs and params of conv / linear / bn layers, added one layer at a time."""

    def __init__(self) -> None:
        self.macs = 0
        self.params = 0
        self.buffers = 0

    def conv(self, cin: int, cout: int, k: int | tuple[int, int], h_out: int, w_out: int | None = None,
             groups: int = 1, bias: bool = True) -> None:
        kh, kw = (k, k) if isinstance(k, int) else k
        w_out = h_out if w_out is None else w_out
        weights = cout * (cin // groups) * kh * kw  # torch weight (Cout, Cin/g, Kh, Kw)
        self.macs += weights * h_out * w_out
        self.params += weights + (cout if bias else 0)

    def deconv(self, cin: int, cout: int, k: int, h_in: int, w_in: int | None = None,
               groups: int = 1, bias: bool = True) -> None:
        w_in = h_in if w_in is None else w_in
        weights = cin * (cout // groups) * k * k  # torch weight (Cin, Cout/g, Kh, Kw)
        self.macs += weights * h_in * w_in
        self.params += weights + (cout if bias else 0)

    def linear(self, inputs: int, outputs: int, bias: bool = True) -> None:
        self.macs += inputs * outputs
        self.params += inputs * outputs + (outputs if bias else 0)

    def bn(self, channels: int) -> None:
        self.params += 2 * channels
        self.buffers += 2 * channels


# -- ResNet-50 --------------------------------------------------------------------------------


def resnet50_tally() -> Tally:
    """torchvision resnet50 (v1.5: stride on the 3x3), from (Cin, Cout, K, stride, H) tuples."""
    convs: list[tuple[int, int, int, int, int]] = [(3, 64, 7, 2, 224)]
    h = out(out(224, 7, 2, 3), 3, 2, 1)  # stem conv, then maxpool 3x3/2 p1: 56
    cin = 64
    for blocks, width, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        for block in range(blocks):
            s = stride if block == 0 else 1
            convs.append((cin, width, 1, 1, h))
            convs.append((width, width, 3, s, h))
            h_out = out(h, 3, s, 1)
            convs.append((width, 4 * width, 1, 1, h_out))
            if block == 0:
                convs.append((cin, 4 * width, 1, s, h))  # downsample
            cin, h = 4 * width, h_out
    assert len(convs) == 53 and (cin, h) == (2048, 7)
    tally = Tally()
    for c_in, c_out, k, s, size in convs:
        tally.conv(c_in, c_out, k, out(size, k, s, k // 2), bias=False)
        tally.bn(c_out)
    tally.linear(2048, 1000)
    return tally


def test_resnet50_independent_description_gives_published_numbers() -> None:
    tally = resnet50_tally()
    assert (tally.macs, tally.params, tally.buffers) == (4_089_184_256, 25_557_032, 53_120)


def test_resnet50_example() -> None:
    model = _example("resnet50")["resnet50"]
    tally = resnet50_tally()
    assert model.totals.macs == tally.macs == 4_089_184_256
    assert model.totals.params == tally.params == 25_557_032
    assert model.totals.buffers == tally.buffers == 53_120
    assert model.totals.flops == 8_178_368_512
    assert model.output == Shape(1, 1, 1000)
    assert sum(1 for layer in model.layers if layer.kind == "conv") == 53
    assert sum(1 for layer in model.layers if layer.kind == "add") == 16


def test_resnet50_batch_and_dtype() -> None:
    model = _example("resnet50", Options(batch=4, dtype="float16"))["resnet50"]
    assert model.totals.macs == 4 * 4_089_184_256
    assert model.totals.params == 25_557_032
    assert model.totals.param_bytes == 2 * 25_557_032


# -- VGG-16 -----------------------------------------------------------------------------------


def vgg16_tally() -> Tally:
    tally = Tally()
    h, cin = 224, 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                 512, 512, 512, "M"):
        if item == "M":
            h = out(h, 2, 2)
        else:
            assert isinstance(item, int)
            tally.conv(cin, item, 3, out(h, 3, 1, 1))
            cin = item
    tally.linear(h * h * cin, 4096)
    tally.linear(4096, 4096)
    tally.linear(4096, 1000)
    return tally


def test_vgg16_example() -> None:
    model = _example("vgg16")["vgg16"]
    tally = vgg16_tally()
    assert (tally.macs, tally.params) == (15_470_264_320, 138_357_544)
    assert (model.totals.macs, model.totals.params) == (15_470_264_320, 138_357_544)
    assert model.totals.buffers == 0
    fc_macs = sum(layer.macs for layer in model.layers if layer.kind == "fc")
    assert fc_macs == 25_088 * 4096 + 4096 * 4096 + 4096 * 1000 == 123_633_664


# -- MobileNet v1 -----------------------------------------------------------------------------


def mobilenet_v1_tally() -> Tally:
    tally = Tally()
    h = out(224, 3, 2, 1)
    tally.conv(3, 32, 3, h, bias=False)
    tally.bn(32)
    cin = 32
    for cout, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + \
            [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        h = out(h, 3, stride, 1)
        tally.conv(cin, cin, 3, h, groups=cin, bias=False)  # depthwise
        tally.bn(cin)
        tally.conv(cin, cout, 1, h, bias=False)  # pointwise
        tally.bn(cout)
        cin = cout
    assert h == 7
    tally.linear(1024, 1000)
    return tally


def test_mobilenet_v1_example() -> None:
    model = _example("mobilenet_v1")["mobilenet_v1"]
    tally = mobilenet_v1_tally()
    assert (tally.macs, tally.params, tally.buffers) == (568_740_352, 4_231_976, 21_888)
    assert (model.totals.macs, model.totals.params, model.totals.buffers) == \
        (568_740_352, 4_231_976, 21_888)
    assert model.output == Shape(1, 1, 1000)


# -- Inception ------------------------------------------------------------------------------


def test_inception_3a_example() -> None:
    models = _example("inception")
    real = models["inception_3a"]
    assert real.output == Shape(28, 28, 256)  # GoogLeNet Table 1: 28x28x256
    tally = Tally()
    for cin, cout, k in [(192, 64, 1), (192, 96, 1), (96, 128, 3), (192, 16, 1), (16, 32, 5),
                         (192, 32, 1)]:
        tally.conv(cin, cout, k, 28)
    assert (real.totals.macs, real.totals.params) == (tally.macs, tally.params)
    assert (tally.macs, tally.params) == (128_049_152, 163_696)
    naive = models["naive"]
    assert naive.output == Shape(28, 28, 64 + 128 + 32 + 192)
    tally = Tally()
    for cin, cout, k in [(192, 64, 1), (192, 128, 3), (192, 32, 5)]:
        tally.conv(cin, cout, k, 28)
    assert (naive.totals.macs, naive.totals.params) == (tally.macs, tally.params)
    assert (tally.macs, tally.params) == (303_464_448, 387_296)


# -- the seed and fc-vs-conv files ------------------------------------------------------------


def test_bottleneck_and_fc_vs_conv_examples() -> None:
    seed = _example("bottleneck")
    assert (seed["direct"].totals.macs, seed["direct"].totals.params) == (1_048_576, 1_048_832)
    assert (seed["bottleneck"].totals.macs, seed["bottleneck"].totals.params) == \
        (278_528, 278_848)
    models = _example("fc_vs_conv")
    assert models["fc"].totals.macs == models["conv"].totals.macs == 102_760_448
    assert models["fc"].totals.params == models["conv"].totals.params == 102_764_544
    large = _example("fc_vs_conv", Options(size=(14, 14)))
    assert (large["fc"].totals.macs, large["fc"].totals.params) == (411_041_792, 411_045_888)
    assert large["fc"].output == Shape(1, 1, 4096)
    assert large["conv"].output == Shape(8, 8, 4096)
    assert (large["conv"].totals.macs, large["conv"].totals.params) == \
        (6_576_668_672, 102_764_544)


def test_resnet_stage_example() -> None:
    models = _example("resnet_stage")
    tally = Tally()
    for _ in range(3):
        tally.conv(256, 64, 1, 56)
        tally.conv(64, 64, 3, 56)
        tally.conv(64, 256, 1, 56)
    stage = models["stage"]
    assert (stage.totals.macs, stage.totals.params) == (tally.macs, tally.params)
    assert (tally.macs, tally.params) == (655_097_856, 210_048)
    assert stage.output == Shape(56, 56, 256)
    assert stage.totals.other_ops == 3 * (56 * 56 * (64 + 64 + 256) + 56 * 56 * 256)
    assert (models["direct"].totals.macs, models["bottleneck"].totals.macs) == \
        (1_048_576, 278_528)


# -- networks written inline ------------------------------------------------------------------


def _fire(squeeze: int, expand: int) -> str:
    return f"1x1({squeeze}) -> relu -> [1x1({expand}) -> relu | 3x3({expand}, p=1) -> relu]"


SQUEEZENET_1_0 = (
    "224x224x3 -> 7x7(96, s=2, p=valid) -> relu -> maxpool3x3(s=2, p=valid, ceil)"
    f" -> {_fire(16, 64)} -> {_fire(16, 64)} -> {_fire(32, 128)}"
    " -> maxpool3x3(s=2, p=valid, ceil)"
    f" -> {_fire(32, 128)} -> {_fire(48, 192)} -> {_fire(48, 192)} -> {_fire(64, 256)}"
    " -> maxpool3x3(s=2, p=valid, ceil)"
    f" -> {_fire(64, 256)}"
    " -> dropout(0.5) -> 1x1(1000) -> relu -> gap"
)


def test_squeezenet_1_0() -> None:
    tally = Tally()
    h = out(224, 7, 2)
    tally.conv(3, 96, 7, h)
    h = out_ceil(h, 3, 2)
    sizes = [h]
    cin = 96
    pool = (0, 0)  # a ceil-mode max pool 3x3/2 between fire modules
    fires = [(16, 64), (16, 64), (32, 128), pool, (32, 128), (48, 192), (48, 192), (64, 256),
             pool, (64, 256)]
    for squeeze, expand in fires:
        if (squeeze, expand) == pool:
            h = out_ceil(h, 3, 2)
            sizes.append(h)
            continue
        tally.conv(cin, squeeze, 1, h)
        tally.conv(squeeze, expand, 1, h)
        tally.conv(squeeze, expand, 3, out(h, 3, 1, 1))
        cin = 2 * expand
    tally.conv(cin, 1000, 1, h)
    assert sizes == [54, 27, 13]
    assert tally.params == 1_248_424  # torchvision squeezenet1_0
    assert tally.macs == 818_924_576
    model = _chain(SQUEEZENET_1_0)
    assert model.output == Shape(1, 1, 1000)
    assert (model.totals.macs, model.totals.params) == (tally.macs, tally.params)
    convs = [layer for layer in model.layers if layer.kind == "conv"]
    assert convs[0].output == Shape(109, 109, 96)
    assert [layer.output for layer in model.layers if layer.kind == "maxpool"] == \
        [Shape(54, 54, 96), Shape(27, 27, 256), Shape(13, 13, 512)]


ALEXNET_GROUPED = (
    "227x227x3 -> 11x11(96, s=4, p=valid) -> relu -> maxpool3x3(s=2, p=valid)"
    " -> 5x5(256, g=2, p=2) -> relu -> maxpool3x3(s=2, p=valid)"
    " -> 3x3(384, p=1) -> relu -> 3x3(384, g=2, p=1) -> relu -> 3x3(256, g=2, p=1) -> relu"
    " -> maxpool3x3(s=2, p=valid)"
    " -> fc(4096) -> relu -> dropout -> fc(4096) -> relu -> dropout -> fc(1000) -> softmax"
)


def test_alexnet_with_groups() -> None:
    tally = Tally()
    h = out(227, 11, 4)
    tally.conv(3, 96, 11, h)
    h = out(h, 3, 2)
    tally.conv(96, 256, 5, out(h, 5, 1, 2), groups=2)
    h = out(h, 3, 2)
    tally.conv(256, 384, 3, h)
    tally.conv(384, 384, 3, h, groups=2)
    tally.conv(384, 256, 3, h, groups=2)
    h = out(h, 3, 2)
    assert h == 6
    tally.linear(h * h * 256, 4096)
    tally.linear(4096, 4096)
    tally.linear(4096, 1000)
    assert tally.params == 60_965_224  # Caffe's bvlc_alexnet
    model = _chain(ALEXNET_GROUPED)
    assert (model.totals.macs, model.totals.params) == (tally.macs, tally.params)
    assert model.totals.macs == 724_406_816


TINY_UNET = (
    "32x32x3 -> 3x3(8) -> relu -> [id"
    " | maxpool2x2 -> 3x3(16) -> bn -> relu -> deconv2x2(8, s=2)"
    " | maxpool2x2 -> maxpool2x2 -> 1x1(4, nobias) -> up4]"
    " -> 3x3(8) -> relu -> 1x1(2)"
)


def test_tiny_unet_with_deconv_up_and_concat() -> None:
    tally = Tally()
    tally.conv(3, 8, 3, 32)
    tally.conv(8, 16, 3, 16)                # after maxpool 32 -> 16
    tally.bn(16)
    tally.deconv(16, 8, 2, 16)              # 16x16 -> 32x32
    tally.conv(8, 4, 1, 8, bias=False)      # after two pools 32 -> 8; up4 is free
    tally.conv(8 + 8 + 4, 8, 3, 32)         # concat 20 channels
    tally.conv(8, 2, 1, 32)
    model = _chain(TINY_UNET)
    assert model.output == Shape(32, 32, 2)
    assert (model.totals.macs, model.totals.params, model.totals.buffers) == \
        (tally.macs, tally.params, tally.buffers)
    concat = [layer for layer in model.layers if layer.kind == "concat"]
    assert concat[0].output == Shape(32, 32, 20)
    # fully convolutional: a 4x larger side gives 16x the MACs, the same params
    large = _chain(TINY_UNET, Options(size=(128, 128)))
    assert large.output == Shape(128, 128, 2)
    assert large.totals.macs == 16 * tally.macs
    assert large.totals.params == tally.params


def test_unet_tiny_example() -> None:
    tally = Tally()
    tally.conv(3, 16, 3, 64)
    tally.conv(16, 16, 3, 64)
    tally.conv(16, 32, 3, 32)               # after maxpool 64 -> 32
    tally.conv(32, 64, 3, 16)               # residual body, after maxpool 32 -> 16
    tally.bn(64)
    tally.conv(64, 64, 3, 16)
    tally.bn(64)
    tally.conv(32, 64, 1, 16)               # projection shortcut
    tally.bn(64)
    tally.conv(64, 32, 1, 32)               # after up2
    tally.conv(32 + 32, 32, 3, 32)          # inner concat
    tally.deconv(32, 16, 2, 32)             # 32 -> 64
    tally.conv(16 + 16, 16, 3, 64)          # outer concat
    tally.conv(16, 2, 1, 64)
    assert (tally.macs, tally.params, tally.buffers) == (72_679_424, 92_594, 384)
    model = _example("unet_tiny")["unet_tiny"]
    assert model.output == Shape(64, 64, 2)
    assert (model.totals.macs, model.totals.params, model.totals.buffers) == \
        (tally.macs, tally.params, tally.buffers)
