"""The register-blocked ``blocked-jit`` convolution (convcost.bench.kernels.jitted_blocked,
its wrapper jit.BlockedJit and its SIMD intrinsics) against the direct-loop reference, and
when it is chosen. Skipped without numba."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from convcost.bench.kernels import (
    choose_algorithm,
    depthwise,
    jit,
    make_input,
    prepare_step,
    weight_bytes,
    workspace_bytes,
)
from convcost.model.program import Shape
from tests.test_kernels import F32, Array, conv_step, rand, ref_conv
from tests.test_measure import (
    test_the_estimate_covers_what_is_really_allocated as estimate_check,
)

if importlib.util.find_spec("numba") is None:
    pytest.skip("numba is not installed (the jit extra)", allow_module_level=True)
# One worker compiles the loops; tests/conftest.py switches them off, jit_on back on.
pytestmark = [pytest.mark.xdist_group("numba"), pytest.mark.usefixtures("jit_on")]

#: (input, Cout, kernel, stride, dilation, padding): every path of the loops.
CASES = [
    ((14, 15, 3), 16, (3, 3), (2, 2), (1, 1), "same"),        # stem: 6x2 tiles, last overlaps
    ((13, 12, 3), 24, (7, 7), (2, 2), (1, 1), 3),             # 7x7 stem, channel block overlaps
    ((9, 9, 4), 8, (3, 3), (1, 1), (1, 1), "same"),           # one vector: 6x1 tiles
    ((9, 9, 4), 12, (3, 3), (1, 1), (1, 1), "valid"),         # 6x1 overlapping; x read in place
    ((7, 5, 2), 16, (3, 3), (1, 1), (1, 1), 1),               # row narrower than a tile
    ((7, 4, 2), 9, (3, 3), (1, 1), (1, 1), "same"),           # ... with one vector, overlapping
    ((12, 12, 5), 16, (3, 3), (1, 1), (2, 2), "same"),        # width dilation: a run per tap
    ((12, 13, 3), 16, (3, 5), (2, 1), (2, 1), ((2, 0), (1, 3))),  # asymmetric everything
    ((11, 11, 3), 5, (3, 3), (1, 1), (1, 1), "same"),         # fewer channels than a vector
    ((6, 7, 12), 16, (5, 5), (1, 1), (1, 1), 2),              # small-channel 5x5
    ((9, 9, 1), 8, (1, 3), (1, 1), (1, 1), "same"),           # 1x3
    ((17, 17, 3), 16, (5, 5), (3, 3), (1, 1), "same"),        # stride 3
    ((6, 6, 2), 40, (2, 2), (1, 1), (1, 1), ((0, 1), (0, 1))),  # even kernel, 40 = 16+16+8
    ((2, 2, 1), 16, (5, 5), (1, 1), (1, 1), "same"),          # kernel larger than the input
]


def _step(case: tuple[Any, ...], bias: bool = True) -> Any:
    shape, cout, kernel, stride, dilation, pad = case
    return conv_step(shape, cout, kernel, stride, dilation, pad, 1, bias)


def run(step: Any, x: Array, dtype: np.dtype[Any] = F32) -> tuple[Array, Any]:
    prepared = prepare_step(step, dtype, np.random.default_rng(0), algorithm="blocked-jit")
    assert prepared.algorithm == "blocked-jit"
    y = prepared(x.astype(dtype))
    assert y.shape == (x.shape[0], *step.output) and y.dtype == dtype
    return y, prepared


def tap_sum(x: Array, w: Array, b: Array | None, step: Any) -> Array:
    """A groups-1 convolution as the sum over taps of a shifted, strided window of the
    zero-padded input times that tap's ``(Cin, Cout)`` weight: the definition, vectorised
    over pixels (the loop reference, ``ref_conv``, takes seconds on these cases; one case
    checks the two agree)."""
    n, h, wd, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = step.kernel_hw, step.stride_hw, step.dilation_hw
    top, bottom, left, right = step.padding
    oh, ow, cout = step.output
    xp = np.zeros((n, h + top + bottom, wd + left + right, c))
    xp[:, top:top + h, left:left + wd] = x
    y = np.zeros((n, oh, ow, cout)) + (0.0 if b is None else b)
    for ky in range(kh):
        for kx in range(kw):
            window = xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                        kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
            y += window @ w[ky, kx]
    return y


def check(y: Array, x: Array, prepared: Any, step: Any, tol: float = 1e-5) -> None:
    """``y`` against the float64 reference on the same values."""
    p = {k: v.astype(np.float64) for k, v in prepared.params.items()}
    expected = tap_sum(x.astype(prepared.dtype).astype(np.float64), p["weight"],
                       p.get("bias"), step)
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_the_tap_sum_is_the_loop_reference() -> None:
    for case in (CASES[1], CASES[7]):
        step = _step(case)
        x, w, b = rand(2, *case[0]), rand(*step.kernel_hw, case[0][2], case[1], seed=2), \
            rand(case[1], seed=3)
        np.testing.assert_allclose(tap_sum(x, w, b, step), ref_conv(x, w, b, step),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_blocked_matches_reference(case: tuple[Any, ...], bias: bool) -> None:
    step = _step(case, bias)
    x = rand(3, *case[0])
    y, prepared = run(step, x)
    check(y, x, prepared, step)
    assert prepared._workspace.nbytes <= workspace_bytes(step, "blocked-jit", 3, 4)
    np.testing.assert_array_equal(prepared(x[1:2].astype(F32)), y[1:2])


def test_blocked_random_geometries(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 random small geometries (fixed seed): kernels 1-6 by 1-6, strides and dilations 1-3,
    asymmetric padding 0-3, 1-40 output channels, batches of 1-3, split over two lanes or
    not. The loops index memory unchecked: every one must equal the definition."""
    monkeypatch.setattr(jit, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    rng = np.random.default_rng(20261201)
    done = 0
    while done < 60:
        kernel = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        if kernel == (1, 1):
            continue
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = ((int(rng.integers(0, 4)), int(rng.integers(0, 4))),
               (int(rng.integers(0, 4)), int(rng.integers(0, 4))))
        shape = (int(rng.integers(1, 14)), int(rng.integers(1, 14)), int(rng.integers(1, 7)))
        reach = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        if any(size < r for size, r in zip(shape, reach)):
            continue  # conv_step writes the layer unpadded, then sets the padding
        step = conv_step(shape, int(rng.integers(1, 41)), kernel, stride, dilation, pad, 1,
                         bool(rng.integers(0, 2)))
        threads = int(rng.integers(1, 3))
        monkeypatch.setattr(depthwise, "blas_thread_count", lambda lanes=threads: lanes)
        x = rand(int(rng.integers(1, 4)), *shape, seed=done)
        y, prepared = run(step, x)
        check(y, x, prepared, step)
        done += 1


@pytest.mark.parametrize("budget", [1, 600])
def test_blocked_bands_of_rows(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    """Weights above BAND_WEIGHT_BYTES: each vector pair of channels sweeps a band of rows
    (one row, or several: the band's input rows within BAND_INPUT_BYTES)."""
    monkeypatch.setattr(jit, "BAND_WEIGHT_BYTES", 0)
    monkeypatch.setattr(jit, "BAND_INPUT_BYTES", budget)
    bands = []
    for case in (CASES[1], CASES[3], CASES[7], CASES[12]):
        step = _step(case)
        bands.append(jit.band_rows(step, 4))
        x = rand(2, *case[0])
        y, prepared = run(step, x)
        check(y, x, prepared, step)
    assert bands == [1, 1, 1, 1] if budget == 1 else bands == [1, 2, 1, 9]


def test_band_rows_follow_the_weights_and_the_input_rows() -> None:
    stem = conv_step((224, 224, 3), 64, (7, 7), (2, 2), pad=3)
    assert jit.band_rows(stem, 4) == 1  # 37.6 KB of weights: one row at a time
    wide = conv_step((56, 56, 16), 1024, (3, 3))  # 590 KB of weights, 3.6 KB input rows
    assert jit.band_rows(wide, 4) == (jit.BAND_INPUT_BYTES // (58 * 16 * 4) - 3) + 1


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[7]], ids=str)
def test_blocked_lanes(monkeypatch: pytest.MonkeyPatch, threads: int,
                       case: tuple[Any, ...]) -> None:
    """One sample's rows split over two lanes (threads), and whole samples per lane."""
    monkeypatch.setattr(jit, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "blas_thread_count", lambda: threads)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    step = _step(case)
    chunk, _ = jit.blocked_plan(step, 1)
    assert len(chunk.blocks(1, step.output.h)) == 2
    for batch in (1, 3):
        x = rand(batch, *case[0])
        y, prepared = run(step, x)
        check(y, x, prepared, step)


@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=str)
def test_blocked_non_contiguous_input(case: tuple[Any, ...]) -> None:
    """A channel slice's view, padded (copied) or read in place (made contiguous)."""
    step = _step(case)
    x = make_input(Shape(*case[0]), 2, F32, np.random.default_rng(0))
    y, prepared = run(step, x)
    wide = np.repeat(x, 2, axis=3)[..., ::2]  # a strided view of the same values
    np.testing.assert_array_equal(prepared(wide), y)


def test_blocked_float64() -> None:
    """Four-lane vectors: every tile shape (two vectors, one, the overlap, the scalar tail)."""
    f64 = np.dtype(np.float64)
    for case in (CASES[0], CASES[2], CASES[5], CASES[8], CASES[12]):
        step = _step(case)
        x = rand(2, *case[0])
        y, prepared = run(step, x, f64)
        check(y, x, prepared, step, tol=1e-12)


def test_blocked_is_chosen_for_stems_and_small_channel_kernels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = [conv_step((32, 32, 3), 16, (3, 3), (2, 2)),   # MobileNet's stem
              conv_step((32, 32, 3), 64, (7, 7), (2, 2)),   # ResNet's
              conv_step((16, 16, 16), 32, (5, 5)),          # Kw*Cin = 80
              conv_step((8, 8, 31), 8, (1, 3))]             # 93
    others = [(conv_step((16, 16, 32), 32, (3, 3)), "shifted-gemm"),  # Kw*Cin = 96
              (conv_step((16, 16, 3), 32, (1, 1), pad="valid"), "gemm"),
              (conv_step((28, 28, 1), 6, (5, 5)), "im2col-gemm"),     # 6 channels
              (conv_step((8, 8, 4), 8, (3, 3), groups=2), "grouped-im2col-gemm")]
    monkeypatch.delenv(jit.ENV, raising=False)
    for step in chosen:
        assert choose_algorithm(step) == "blocked-jit"
        assert choose_algorithm(step, "float64") == "blocked-jit"
        assert choose_algorithm(step, "float16") != "blocked-jit"
    for step, algorithm in others:
        assert choose_algorithm(step) == algorithm
    monkeypatch.setenv(jit.ENV, "0")
    assert choose_algorithm(chosen[0]) == "im2col-gemm"
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(chosen[0], "float16", None, algorithm="blocked-jit")
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(others[3][0], "float32", None, algorithm="blocked-jit")


def test_blocked_weights_are_counted_and_replaceable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jit.ENV, raising=False)
    for bias in (True, False):
        step = _step(CASES[1], bias)
        prepared = prepare_step(step, F32, np.random.default_rng(0))
        assert prepared.algorithm == "blocked-jit"
        held = sum(a.nbytes for a in prepared.params.values())
        assert prepared.param_bytes == weight_bytes(step, F32) >= held
    x = rand(2, *CASES[1][0])
    weight = rand(*prepared.params["weight"].shape, seed=7).astype(F32)
    prepared.set_params(weight=weight)
    expected = tap_sum(x.astype(F32).astype(np.float64), weight.astype(np.float64), None, step)
    np.testing.assert_allclose(prepared(x.astype(F32)), expected, rtol=1e-5, atol=1e-5)


def test_the_memory_estimate_covers_the_blocked_kernel() -> None:
    """The executor's traced peak stays within the estimate with blocked-jit chosen."""
    from convcost.analysis import analyze_text

    text = "32x32x3 -> 3x3(16, s=2) -> relu -> 5x5(16, p=2) -> 3x3(dw) -> 1x1(8)"
    steps = analyze_text(text).models[0].program.steps
    assert {choose_algorithm(s) for s in steps if s.kind == "conv"} >= {"blocked-jit"}
    estimate_check(text, "float32")
