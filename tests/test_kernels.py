"""convcost.bench.kernels against slow, obviously-correct references.

Steps are built the way convcost builds them, from spec text (``analyze_text``), so the
kernels run on the resolver's geometry. The output size of every step is cross-checked here
against the contract's formulas ("Output size" in docs/), written out independently of
``convcost.model.geometry``: the kernels take sizes from the step, so this test file is where
a wrong size would be caught. The references loop explicitly over output pixels, kernel
offsets and channels and share no code with the kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from convcost.analysis import analyze_text
from convcost.bench.kernels import (
    KERNELS,
    PreparedStep,
    base,
    choose_algorithm,
    jit,
    make_input,
    numpy_dtype,
    prepare_step,
)
from convcost.errors import BenchError, UnsupportedDtype
from convcost.lang.vocab import OP_KINDS
from convcost.model.program import Shape, Step

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
Array = Any  # np.ndarray; kept loose so the helpers stay short

# ---------------------------------------------------------------------------------------------
# Steps from spec text, with the contract's output sizes checked independently


def axis_geometry(size: int, kernel: int, stride: int, dilation: int,
                  pad: str | int | tuple[int, int], ceil: bool = False) -> tuple[int, int, int]:
    """(out, before, after) along one axis of a conv or pool, by the contract's formulas."""
    if pad == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
        return out, total // 2, total - total // 2
    if isinstance(pad, tuple):  # raw (before, after): asymmetric padding no spec can write
        before, after = pad
        return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1, before, after
    p = 0 if pad == "valid" else int(pad)
    if ceil:
        out = math.ceil((size + 2 * p - kernel) / stride) + 1
        if (out - 1) * stride >= size + p:
            out -= 1
    else:
        # Brute force: count the window starts whose whole window fits the padded input.
        out = sum(1 for start in range(size + 2 * p)
                  if start % stride == 0 and start + dilation * (kernel - 1) < size + 2 * p)
    return out, p, p


def deconv_axis(size: int, kernel: int, stride: int, dilation: int,
                pad: str | int) -> tuple[int, int, int]:
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    if pad == "same":
        total = full - size * stride
        before = total // 2 if total >= 0 else 0
        return size * stride, before, total - before
    p = 0 if pad == "valid" else int(pad)
    return full - 2 * p, p, p


def one_step(text: str) -> Step:
    """The first step of the one model ``text`` defines."""
    analysis = analyze_text(text)
    assert analysis.errors == [], analysis.errors
    return analysis.programs[0].steps[0]


def _pad_text(pad: Any) -> str:
    if isinstance(pad, tuple):
        return f"{pad[0]}x{pad[1]}"
    return str(pad)


def conv_step(shape: tuple[int, int, int], cout: int, kernel: tuple[int, int],
              stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
              pad: Any = "same", groups: int = 1, bias: bool = True) -> Step:
    """A conv step; ``pad`` is 'same', 'valid', an int, (Ph, Pw) or ((t, b), (l, r))."""
    h, w, cin = shape
    pads = pad if isinstance(pad, tuple) else (pad, pad)
    raw = isinstance(pads[0], tuple)
    written = "valid" if raw else _pad_text(pad)
    step = one_step(f"{h}x{w}x{cin} -> {kernel[0]}x{kernel[1]}({cout}, s={stride[0]}x{stride[1]}"
                    f", d={dilation[0]}x{dilation[1]}, p={written}, g={groups}"
                    f"{'' if bias else ', nobias'})")
    oh, top, bottom = axis_geometry(h, kernel[0], stride[0], dilation[0], pads[0])
    ow, left, right = axis_geometry(w, kernel[1], stride[1], dilation[1], pads[1])
    if raw:
        step = step._replace(padding=(top, bottom, left, right), output=Shape(oh, ow, cout))
    assert step.output == Shape(oh, ow, cout)
    assert step.padding == (top, bottom, left, right)
    return step


def deconv_step(shape: tuple[int, int, int], cout: int, kernel: tuple[int, int],
                stride: tuple[int, int], pad: Any = "same", dilation: tuple[int, int] = (1, 1),
                groups: int = 1, bias: bool = True) -> Step:
    h, w, cin = shape
    pads = pad if isinstance(pad, tuple) else (pad, pad)
    step = one_step(f"{h}x{w}x{cin} -> deconv{kernel[0]}x{kernel[1]}({cout}, "
                    f"s={stride[0]}x{stride[1]}, d={dilation[0]}x{dilation[1]}, "
                    f"p={_pad_text(pad)}, g={groups}{'' if bias else ', nobias'})")
    oh, top, bottom = deconv_axis(h, kernel[0], stride[0], dilation[0], pads[0])
    ow, left, right = deconv_axis(w, kernel[1], stride[1], dilation[1], pads[1])
    assert step.output == Shape(oh, ow, cout)
    assert step.padding == (top, bottom, left, right)
    return step


def pool_step(kind: str, shape: tuple[int, int, int], kernel: tuple[int, int],
              stride: tuple[int, int] | None = None, pad: Any = "same",
              ceil: bool = False) -> Step:
    h, w, c = shape
    stride = stride or kernel
    pads = pad if isinstance(pad, tuple) else (pad, pad)
    step = one_step(f"{h}x{w}x{c} -> {kind}{kernel[0]}x{kernel[1]}(s={stride[0]}x{stride[1]}, "
                    f"p={_pad_text(pad)}{', ceil' if ceil else ''})")
    oh, top, bottom = axis_geometry(h, kernel[0], stride[0], 1, pads[0], ceil)
    ow, left, right = axis_geometry(w, kernel[1], stride[1], 1, pads[1], ceil)
    assert step.output == Shape(oh, ow, c)
    assert step.padding == (top, bottom, left, right)
    return step


def simple_step(kind: str, shape: tuple[int, int, int], units: int = 0) -> Step:
    h, w, c = shape
    word = {"fc": f"fc({units})", "up": f"up{units}"}.get(kind, kind)
    step = one_step(f"{h}x{w}x{c} -> {word}")
    expected = {"fc": Shape(1, 1, units), "gap": Shape(1, 1, c),
                "up": Shape(h * units, w * units, c)}.get(kind, Shape(h, w, c))
    assert step.output == expected
    return step


def run(step: Step, *xs: Array, algorithm: str | None = None,
        seed: int = 0) -> tuple[Array, PreparedStep]:
    prepared = prepare_step(step, F64, np.random.default_rng(seed), algorithm=algorithm)
    y = prepared(*xs)
    assert y.shape == (xs[0].shape[0], *step.output)
    assert y.dtype == F64
    return y, prepared


def rand(*shape: int, seed: int = 1) -> Array:
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------------------------
# References: explicit loops, independent of the kernels


def ref_conv(x: Array, w: Array, b: Array | None, step: Step) -> Array:
    n, h, wd, _ = x.shape
    kh, kw, cg, cout = w.shape
    g = step.groups
    cog = cout // g
    sh, sw = step.stride_hw
    dh, dw = step.dilation_hw
    top, _, left, _ = step.padding
    oh, ow = step.output.h, step.output.w
    y = np.zeros((n, oh, ow, cout))
    for i in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for co in range(cout):
                    group = co // cog
                    acc = 0.0 if b is None else b[co]
                    for ky in range(kh):
                        iy = oy * sh + ky * dh - top
                        if not 0 <= iy < h:
                            continue  # zero padding
                        for kx in range(kw):
                            ix = ox * sw + kx * dw - left
                            if not 0 <= ix < wd:
                                continue
                            for ci in range(cg):
                                acc += x[i, iy, ix, group * cg + ci] * w[ky, kx, ci, co]
                    y[i, oy, ox, co] = acc
    return y


def ref_deconv(x: Array, w: Array, b: Array | None, step: Step) -> Array:
    n, h, wd, cin = x.shape
    _, kh, kw, cog = w.shape
    g = step.groups
    cg = cin // g
    sh, sw = step.stride_hw
    dh, dw = step.dilation_hw
    fh, fw = (h - 1) * sh + dh * (kh - 1) + 1, (wd - 1) * sw + dw * (kw - 1) + 1
    full = np.zeros((n, fh, fw, cog * g))
    for i in range(n):
        for iy in range(h):
            for ix in range(wd):
                for ci in range(cin):
                    group = ci // cg
                    for ky in range(kh):
                        for kx in range(kw):
                            for j in range(cog):
                                full[i, iy * sh + ky * dh, ix * sw + kx * dw, group * cog + j] += \
                                    x[i, iy, ix, ci] * w[ci, ky, kx, j]
    top, bottom, left, right = step.padding
    # Negative crops append zero rows/columns: pad first, then crop what is positive.
    full = np.pad(full, ((0, 0), (max(-top, 0), max(-bottom, 0)),
                         (max(-left, 0), max(-right, 0)), (0, 0)))
    t, bt, lf, rt = (max(p, 0) for p in (top, bottom, left, right))
    y = full[:, t:full.shape[1] - bt, lf:full.shape[2] - rt]
    return y + (0 if b is None else b)


def ref_pool(x: Array, step: Step) -> Array:
    n, h, w, c = x.shape
    kh, kw = step.kernel_hw
    sh, sw = step.stride_hw
    top, bottom, left, right = step.padding
    oh, ow = step.output.h, step.output.w
    y = np.zeros((n, oh, ow, c))
    for i in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    best, total, count_real, count_padded = -math.inf, 0.0, 0, 0
                    for ky in range(kh):
                        iy = oy * sh + ky - top
                        for kx in range(kw):
                            ix = ox * sw + kx - left
                            if 0 <= iy < h and 0 <= ix < w:
                                best = max(best, x[i, iy, ix, ch])
                                total += x[i, iy, ix, ch]
                                count_real += 1
                            if -top <= iy < h + bottom and -left <= ix < w + right:
                                count_padded += 1  # inside the explicitly padded input
                    if step.kind == "maxpool":
                        y[i, oy, ox, ch] = best
                    elif step.pad_mode == "same":
                        y[i, oy, ox, ch] = total / count_real
                    else:
                        y[i, oy, ox, ch] = total / count_padded
    return y


def ref_fc(x: Array, w: Array, b: Array | None) -> Array:
    n = x.shape[0]
    flat = x.reshape(n, -1)  # NHWC flattening
    y = np.zeros((n, w.shape[1]))
    for i in range(n):
        for o in range(w.shape[1]):
            acc = 0.0 if b is None else b[o]
            for k in range(flat.shape[1]):
                acc += flat[i, k] * w[k, o]
            y[i, o] = acc
    return y.reshape(n, 1, 1, -1)


# ---------------------------------------------------------------------------------------------
# Convolution


CONV_CASES = [
    # (input HxWxC, Cout, kernel, stride, dilation, pad, groups)
    ((7, 6, 3), 4, (3, 3), (1, 1), (1, 1), "same", 1),
    ((7, 6, 3), 4, (3, 3), (1, 1), (1, 1), "valid", 1),
    ((7, 6, 3), 4, (3, 3), (2, 2), (1, 1), "same", 1),
    ((7, 6, 3), 4, (3, 3), (2, 1), (1, 1), "same", 1),
    ((8, 7, 2), 3, (3, 3), (2, 2), (1, 1), "valid", 1),
    ((7, 6, 3), 4, (3, 3), (1, 1), (2, 2), "same", 1),
    ((9, 8, 2), 3, (3, 3), (2, 1), (2, 1), 2, 1),
    ((11, 7, 3), 4, (3, 3), (3, 1), (2, 1), 1, 1),          # row phases 0, 2, 1
    ((9, 7, 2), 3, (1, 3), (2, 1), (1, 1), "same", 1),      # 1xK, every other row
    ((7, 8, 3), 4, (3, 3), (1, 2), (1, 1), 1, 1),           # 1x2 stride, odd left padding
    ((6, 9, 2), 3, (3, 3), (1, 3), (1, 1), (1, 2), 1),
    ((7, 6, 3), 4, (4, 4), (1, 1), (1, 1), "same", 1),      # TF-same odd padding (1, 2)
    ((8, 7, 3), 4, (4, 2), (2, 2), (1, 1), "same", 1),
    ((6, 6, 2), 3, (2, 2), (1, 1), (1, 1), "same", 1),      # even kernel: (0, 1)
    ((5, 7, 3), 4, (1, 3), (1, 1), (1, 1), "same", 1),
    ((7, 5, 3), 4, (3, 1), (1, 1), (1, 1), "same", 1),
    ((7, 6, 3), 4, (3, 3), (1, 1), (1, 1), (1, 2), 1),      # explicit PhxPw
    ((7, 6, 3), 4, (3, 3), (2, 2), (1, 1), 1, 1),
    ((6, 7, 3), 4, (3, 3), (1, 1), (1, 1), ((0, 2), (1, 0)), 1),  # asymmetric padding
    ((7, 6, 4), 6, (3, 3), (1, 1), (1, 1), "same", 2),      # groups
    ((7, 6, 4), 4, (3, 3), (2, 1), (1, 2), "same", 2),
    ((7, 6, 4), 4, (3, 3), (1, 1), (1, 1), "same", 4),      # depthwise
    ((7, 6, 3), 3, (3, 3), (2, 2), (1, 1), "valid", 3),
    ((7, 6, 3), 6, (3, 3), (1, 1), (2, 1), "same", 3),      # depth multiplier 2
    ((8, 7, 2), 6, (5, 3), (2, 1), (1, 1), 1, 2),           # depth multiplier 3
    ((5, 6, 4), 3, (1, 1), (1, 1), (1, 1), "same", 1),      # 1x1
    ((5, 6, 2), 5, (1, 1), (1, 1), (1, 1), "same", 1),      # 1x1 widening: bias folded
    ((5, 6, 4), 3, (1, 1), (2, 2), (1, 1), "valid", 1),     # strided 1x1
    ((5, 6, 4), 3, (1, 1), (1, 1), (1, 1), 1, 1),           # padded 1x1
    ((4, 5, 4), 6, (1, 1), (1, 1), (1, 1), "same", 2),      # grouped 1x1
]


def algorithms_for(step: Step) -> list[str]:
    """Every kernel that can run ``step`` (the default choice first)."""
    out = [choose_algorithm(step)]
    g = step.groups
    if g == 1:
        out.extend(["im2col-gemm", "shifted-gemm"])
        if step.kernel_hw == (1, 1) and step.padding == (0, 0, 0, 0):
            out.append("gemm")
    else:
        out.append("grouped-im2col-gemm")
        if g == step.input.c:
            out.append("direct")  # direct-jit: tests/test_kernels_jit.py
    return list(dict.fromkeys(out))


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_matches_reference(case: tuple[Any, ...], bias: bool) -> None:
    shape, cout, kernel, stride, dilation, pad, groups = case
    step = conv_step(shape, cout, kernel, stride, dilation, pad, groups, bias)
    x = rand(2, *shape)
    for algorithm in algorithms_for(step):
        y, prepared = run(step, x, algorithm=algorithm)
        assert prepared.algorithm == algorithm
        p = prepared.params
        expected = ref_conv(x, p["weight"], p.get("bias"), step)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12, err_msg=algorithm)


@pytest.mark.parametrize("algorithm", ["shifted-gemm", "im2col-gemm", "grouped-im2col-gemm",
                                       "direct"])
def test_conv_blocks(monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    """Tiny block sizes: blocks of rows of one sample and blocks of several samples."""
    groups = 1 if algorithm in ("shifted-gemm", "im2col-gemm") else 4
    step = conv_step((6, 5, 4), 8, (3, 3), (1, 1), (2, 1), "same", groups)
    x = rand(3, 6, 5, 4)
    # A sample is 6x5 = 30 output pixels: blocks of 1 and 2 rows, one sample, two samples.
    for pixels in (5, 10, 30, 60):
        monkeypatch.setattr(base, "CHUNK_ROWS", pixels)
        y, prepared = run(step, x, algorithm=algorithm)
        p = prepared.params
        np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pad", [3, ((4, 0), (0, 3))])
def test_conv_blocks_in_padding(monkeypatch: pytest.MonkeyPatch, pad: Any) -> None:
    """Padding wider than the kernel: whole blocks and columns read only zeros."""
    monkeypatch.setattr(base, "CHUNK_ROWS", 4)
    step = conv_step((3, 4, 3), 2, (3, 3), (1, 1), (1, 1), pad)
    x = rand(2, 3, 4, 3)
    for algorithm in ("shifted-gemm", "im2col-gemm"):
        y, prepared = run(step, x, algorithm=algorithm)
        p = prepared.params
        np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step), rtol=1e-12,
                                   atol=1e-12)


def test_shifted_gemm_strided_width_and_dilation() -> None:
    step = conv_step((7, 6, 3), 5, (3, 2), (1, 2), (2, 1), "same")
    x = rand(2, 7, 6, 3)
    y, prepared = run(step, x, algorithm="shifted-gemm")
    p = prepared.params
    np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step), rtol=1e-12)


def test_conv_weights_can_be_replaced() -> None:
    step = conv_step((5, 5, 2), 3, (3, 3), groups=1)
    prepared = prepare_step(step, F64, np.random.default_rng(0))
    w = rand(3, 3, 2, 3, seed=7)
    prepared.set_params(weight=w, bias=np.zeros(3))
    x = rand(1, 5, 5, 2)
    np.testing.assert_allclose(prepared(x), ref_conv(x, w, None, step), rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        prepared.set_params(weight=np.zeros((3, 3, 2, 4)))
    with pytest.raises(KeyError):
        prepared.set_params(scale=np.zeros(3))


def test_default_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jit.ENV, "0")
    assert choose_algorithm(conv_step((56, 56, 256), 64, (1, 1))) == "gemm"
    assert choose_algorithm(conv_step((56, 56, 64), 64, (3, 3))) == "shifted-gemm"
    assert choose_algorithm(conv_step((56, 56, 64), 128, (3, 3), (2, 2))) == "shifted-gemm"
    assert choose_algorithm(conv_step((14, 14, 512), 512, (3, 3), (2, 2))) == "im2col-gemm"
    assert choose_algorithm(conv_step((14, 14, 256), 256, (3, 3))) == "shifted-gemm"
    assert choose_algorithm(conv_step((7, 7, 512), 512, (3, 3))) == "im2col-gemm"
    assert choose_algorithm(conv_step((112, 112, 32), 64, (3, 3))) == "shifted-gemm"
    assert choose_algorithm(conv_step((112, 112, 8), 16, (3, 3))) == "im2col-gemm"
    assert choose_algorithm(conv_step((224, 224, 3), 64, (7, 7), (2, 2))) == "im2col-gemm"
    assert choose_algorithm(conv_step((28, 28, 32), 32, (3, 3), groups=32)) == "direct"
    monkeypatch.setenv(jit.ENV, "1")
    depthwise = conv_step((28, 28, 32), 32, (3, 3), groups=32)
    assert choose_algorithm(depthwise) == ("direct-jit" if jit.numba_installed() else "direct")
    assert choose_algorithm(depthwise, "float16") == "direct"  # numba has no float16
    # A dtype NumPy may not know (bfloat16 unless ml_dtypes registered it): never the jit.
    assert not jit.enabled_for("bfloat16") and not jit.enabled_for("int4")
    monkeypatch.setenv(jit.ENV, "0")
    assert choose_algorithm(conv_step((28, 28, 32), 64, (3, 3), groups=4)) \
        == "grouped-im2col-gemm"
    assert choose_algorithm(simple_step("relu", (2, 2, 2))) == "elementwise"
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(conv_step((5, 5, 2), 2, (3, 3), groups=2), F64, np.random.default_rng(0),
                     algorithm="shifted-gemm")


# ---------------------------------------------------------------------------------------------
# Transposed convolution


DECONV_CASES = [
    # (input, Cout, kernel, stride, pad, dilation, groups)
    ((3, 4, 2), 3, (3, 3), (1, 1), "same", (1, 1), 1),
    ((3, 4, 2), 3, (3, 3), (1, 1), "valid", (1, 1), 1),
    ((3, 4, 2), 3, (4, 4), (2, 2), "same", (1, 1), 1),
    ((3, 4, 2), 3, (3, 3), (2, 2), 1, (1, 1), 1),
    ((3, 4, 2), 3, (2, 2), (2, 2), "valid", (1, 1), 1),
    ((3, 4, 2), 3, (3, 3), (3, 3), "same", (1, 1), 1),       # crop 0 / append -? (k == s)
    ((3, 4, 2), 3, (2, 2), (3, 3), "same", (1, 1), 1),       # stride > kernel: negative crop
    ((3, 4, 2), 3, (1, 1), (3, 2), "same", (1, 1), 1),       # 1x1, negative crops both axes
    ((3, 4, 2), 3, (3, 2), (2, 1), (1, 0), (1, 1), 1),       # PhxPw
    ((3, 4, 2), 3, (3, 3), (2, 2), "same", (2, 1), 1),       # dilation
    ((3, 4, 4), 6, (3, 3), (2, 2), "same", (1, 1), 2),       # groups
    ((3, 3, 4), 4, (4, 4), (2, 2), 1, (1, 1), 4),            # depthwise transposed
]


@pytest.mark.parametrize("case", DECONV_CASES, ids=[str(i) for i in range(len(DECONV_CASES))])
def test_deconv_matches_reference(case: tuple[Any, ...]) -> None:
    shape, cout, kernel, stride, pad, dilation, groups = case
    step = deconv_step(shape, cout, kernel, stride, pad, dilation, groups)
    x = rand(2, *shape)
    y, prepared = run(step, x)
    assert prepared.algorithm == "scatter-gemm"
    p = prepared.params
    np.testing.assert_allclose(y, ref_deconv(x, p["weight"], p["bias"], step), rtol=1e-12,
                               atol=1e-12)


def test_deconv_negative_crop_appends_zeros() -> None:
    step = deconv_step((2, 2, 1), 1, (1, 1), (3, 3), "same", bias=False)
    assert step.padding == (0, -2, 0, -2)
    y, _ = run(step, rand(1, 2, 2, 1))
    assert y.shape == (1, 6, 6, 1)
    assert np.all(y[0, 1:3, :, 0] == 0) and np.all(y[0, 4:, :, 0] == 0)


def test_deconv_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    for pixels in (3, 4, 16, 64):
        monkeypatch.setattr(base, "CHUNK_ROWS", pixels)
        for groups in (1, 2):
            step = deconv_step((3, 4, 4), 4, (3, 3), (2, 2), 1, groups=groups)
            x = rand(3, 3, 4, 4)
            y, prepared = run(step, x)
            p = prepared.params
            np.testing.assert_allclose(y, ref_deconv(x, p["weight"], p["bias"], step),
                                       rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# fc


def test_fc_matches_reference() -> None:
    step = simple_step("fc", (3, 2, 4), units=5)
    x = rand(2, 3, 2, 4)
    y, prepared = run(step, x)
    p = prepared.params
    np.testing.assert_allclose(y, ref_fc(x, p["weight"], p["bias"]), rtol=1e-12)


def test_1x1_conv_and_fc_agree_on_a_1x1_map() -> None:
    conv = conv_step((1, 1, 6), 4, (1, 1))
    fc = simple_step("fc", (1, 1, 6), units=4)
    p_conv = prepare_step(conv, F64, np.random.default_rng(0))
    p_fc = prepare_step(fc, F64, np.random.default_rng(1))
    weights = p_conv.params
    p_fc.set_params(weight=weights["weight"].reshape(6, 4), bias=weights["bias"])
    x = rand(3, 1, 1, 6)
    np.testing.assert_allclose(p_conv(x), p_fc(x), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Pools


POOL_CASES = [
    # (kind, input, kernel, stride, pad, ceil)
    ("maxpool", (6, 7, 2), (2, 2), None, "same", False),
    ("maxpool", (7, 7, 2), (3, 3), (2, 2), "same", False),
    ("maxpool", (7, 6, 2), (3, 3), (2, 2), "valid", False),
    ("maxpool", (7, 6, 2), (3, 3), (2, 2), 1, False),
    ("maxpool", (8, 6, 2), (3, 3), (2, 2), "valid", True),
    ("maxpool", (8, 8, 2), (3, 3), (2, 2), 1, True),
    ("maxpool", (7, 5, 2), (2, 3), (2, 1), (1, 1), False),
    ("avgpool", (6, 7, 2), (2, 2), None, "same", False),
    ("avgpool", (7, 7, 2), (3, 3), (2, 2), "same", False),     # TF: padding excluded
    ("avgpool", (7, 6, 2), (3, 3), (1, 1), "same", False),
    ("avgpool", (7, 6, 2), (3, 3), (2, 2), 1, False),           # PyTorch: padding included
    ("avgpool", (8, 6, 2), (3, 3), (2, 2), "valid", True),      # ceil: clipped divisor
    ("avgpool", (8, 8, 2), (3, 3), (2, 2), 1, True),
    ("avgpool", (5, 5, 2), (2, 2), (2, 2), 1, True),
    ("avgpool", (7, 5, 2), (2, 3), (2, 1), (1, 1), False),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_pool_matches_reference(case: tuple[Any, ...]) -> None:
    kind, shape, kernel, stride, pad, ceil = case
    step = pool_step(kind, shape, kernel, stride, pad, ceil)
    x = rand(2, *shape)
    y, prepared = run(step, x)
    assert prepared.algorithm == "window"
    np.testing.assert_allclose(y, ref_pool(x, step), rtol=1e-12, atol=1e-12)


def test_avgpool_divisors_by_hand() -> None:
    ones = np.ones((1, 3, 3, 1))
    # PyTorch AvgPool2d(2, stride=2, padding=1, count_include_pad=True) on ones: corners see
    # one real pixel of four.
    y, _ = run(pool_step("avgpool", (3, 3, 1), (2, 2), (2, 2), 1), ones)
    np.testing.assert_allclose(y[0, :, :, 0], [[0.25, 0.5], [0.5, 1.0]])
    # ceil_mode: the last window runs past the padded input and is clipped to it (divisor 2).
    step = pool_step("avgpool", (3, 3, 1), (2, 2), (2, 2), "valid", ceil=True)
    assert step.output.h == 2
    y, _ = run(step, ones)
    np.testing.assert_allclose(y[0, :, :, 0], np.ones((2, 2)))
    # TensorFlow 'same' excludes padding: averages of ones are ones.
    y, _ = run(pool_step("avgpool", (3, 3, 1), (2, 2), (2, 2), "same"), ones)
    np.testing.assert_allclose(y, np.ones_like(y))


# ---------------------------------------------------------------------------------------------
# Shape-preserving and simple layers


def test_gap() -> None:
    x = rand(2, 3, 4, 5)
    y, _ = run(simple_step("gap", (3, 4, 5)), x)
    for i in range(2):
        for c in range(5):
            assert y[i, 0, 0, c] == pytest.approx(sum(x[i, a, b, c] for a in range(3)
                                                      for b in range(4)) / 12, rel=1e-12)


def test_up() -> None:
    x = rand(2, 2, 3, 2)
    y, _ = run(simple_step("up", (2, 3, 2), units=3), x)
    for oy in range(6):
        for ox in range(9):
            np.testing.assert_array_equal(y[:, oy, ox], x[:, oy // 3, ox // 3])


def test_bn() -> None:
    x = rand(2, 3, 3, 4)
    y, prepared = run(simple_step("bn", (3, 3, 4)), x)
    p = prepared.params
    for c in range(4):
        np.testing.assert_allclose(y[..., c], x[..., c] * p["scale"][c] + p["shift"][c],
                                   rtol=1e-14)


def _scalar(fn: Any) -> Any:
    return np.vectorize(fn, otypes=[float])


ACTIVATIONS = {
    "relu": _scalar(lambda v: max(v, 0.0)),
    "relu6": _scalar(lambda v: min(max(v, 0.0), 6.0)),
    "sigmoid": _scalar(lambda v: 1.0 / (1.0 + math.exp(-v))),
    "tanh": _scalar(math.tanh),
    "gelu": _scalar(lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                       * (v + 0.044715 * v ** 3)))),
    "silu": _scalar(lambda v: v / (1.0 + math.exp(-v))),
    "dropout": _scalar(lambda v: v),
    "id": _scalar(lambda v: v),
}


@pytest.mark.parametrize("kind", sorted(ACTIVATIONS))
def test_activation(kind: str) -> None:
    x = 4 * rand(2, 3, 2, 5)
    x[0, 0, 0, :] = [-50.0, 50.0, 7.0, -7.0, 0.0]  # saturation and relu6's clip
    y, _ = run(simple_step(kind, (3, 2, 5)), x)
    np.testing.assert_allclose(y, ACTIVATIONS[kind](x), rtol=1e-12, atol=1e-15)


def test_softmax_over_channels() -> None:
    x = 10 * rand(2, 3, 2, 4)
    x[0, 0, 0, 0] = 800.0  # would overflow a naive exp
    y, _ = run(simple_step("softmax", (3, 2, 4)), x)
    for i in range(2):
        for a in range(3):
            for b in range(2):
                top = max(x[i, a, b])
                e = [math.exp(v - top) for v in x[i, a, b]]
                np.testing.assert_allclose(y[i, a, b], [v / sum(e) for v in e], rtol=1e-12)


def test_concat_and_add() -> None:
    a, b = rand(2, 3, 3, 2, seed=1), rand(2, 3, 3, 5, seed=2)
    concat = Step(index=1, path="1.concat", kind="concat", text="concat",
                  input=Shape(3, 3, 1), output=Shape(3, 3, 7), inputs=(1, 2), out=3,
                  operands=(Shape(3, 3, 2), Shape(3, 3, 5)))
    y, _ = run(concat, a, b)
    np.testing.assert_array_equal(y[..., :2], a)
    np.testing.assert_array_equal(y[..., 2:], b)
    add = Step(index=1, path="1.add", kind="add", text="add", input=Shape(3, 3, 2),
               output=Shape(3, 3, 2), inputs=(1, 2), out=3,
               operands=(Shape(3, 3, 2), Shape(3, 3, 2)))
    c = rand(2, 3, 3, 2, seed=3)
    y, _ = run(add, a, c)
    np.testing.assert_allclose(y, a + c)


def test_wrong_inputs_are_rejected() -> None:
    prepared = prepare_step(simple_step("relu", (2, 2, 3)), F64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="expects NHWC"):
        prepared(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="float64"):
        prepared(np.zeros((1, 2, 2, 3), dtype=np.float32))
    with pytest.raises(TypeError):
        prepared(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)))


# ---------------------------------------------------------------------------------------------
# dtypes and inputs


def test_numpy_dtype() -> None:
    assert numpy_dtype("float32") == np.float32
    assert numpy_dtype("float64") == np.float64
    assert numpy_dtype("float16") == np.float16
    for name in ("bfloat16", "int8"):
        with pytest.raises(UnsupportedDtype, match="float32"):
            numpy_dtype(name)
    with pytest.raises(UnsupportedDtype, match="unknown"):
        numpy_dtype("complex64")
    assert issubclass(UnsupportedDtype, BenchError)


@pytest.mark.parametrize("name", ["float32", "float16"])
def test_lower_precision_runs(name: str) -> None:
    dtype = numpy_dtype(name)
    layers = [conv_step((6, 6, 4), 4, (3, 3)), conv_step((6, 6, 4), 4, (3, 3), groups=4),
              deconv_step((6, 6, 4), 2, (2, 2), (2, 2)), simple_step("gelu", (6, 6, 4))]
    x = make_input(Shape(6, 6, 4), 2, dtype, np.random.default_rng(0))
    assert x.shape == (2, 6, 6, 4) and x.dtype == dtype
    for step in layers:
        low = prepare_step(step, dtype, np.random.default_rng(3))
        high = prepare_step(step, F64, np.random.default_rng(3))
        high.set_params(**{k: v.astype(np.float64) for k, v in low.params.items()})
        y = low(x)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, high(x.astype(np.float64)), rtol=0.02, atol=0.02)


# ---------------------------------------------------------------------------------------------
# Registry, planning and weights


def test_every_op_kind_has_a_kernel() -> None:
    assert set(KERNELS) == OP_KINDS


@pytest.mark.parametrize("kind", ["id", "dropout"])
def test_aliases_return_their_input(kind: str) -> None:
    x = rand(2, 3, 3, 2)
    y, prepared = run(simple_step(kind, (3, 3, 2)), x)
    assert y is x and prepared.algorithm == "alias"


def test_zero_init_draws_nothing() -> None:
    step = conv_step((5, 5, 2), 3, (3, 3))
    prepared = prepare_step(step, F64, None)
    assert all(not value.any() for value in prepared.params.values())
    assert not prepared(rand(1, 5, 5, 2)).any()


@pytest.mark.parametrize("case", CONV_CASES[:20:3], ids=str)
def test_kernels_take_no_more_workspace_than_planned(case: tuple[Any, ...]) -> None:
    from convcost.bench.kernels import workspace_bytes

    step = conv_step(*case)
    for algorithm in algorithms_for(step):
        _, prepared = run(step, rand(3, *case[0]), algorithm=algorithm)
        assert prepared._workspace.nbytes <= workspace_bytes(step, algorithm, 3, 8)


def test_a_forced_algorithm_must_fit_the_step() -> None:
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(conv_step((5, 5, 4), 4, (3, 3), groups=2), F64, np.random.default_rng(0),
                     algorithm="direct")
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(simple_step("relu", (2, 2, 2)), F64, np.random.default_rng(0),
                     algorithm="gemm")


def test_unsupported_dtype_is_located_and_typed() -> None:
    with pytest.raises(UnsupportedDtype) as info:
        prepare_step(simple_step("relu", (2, 2, 2)), "int8", None)
    assert info.value.kind == "dtype" and info.value.source == "<dtype>"
