"""Kernels of the newer forms against direct-loop references (float64), and --bench on the
newer forms end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcost.analysis import analyze_text
from convcost.bench.kernels import prepare_step
from convcost.model.program import Step


def _steps(spec: str) -> list[Step]:
    result = analyze_text(spec)
    assert result.errors == []
    return list(result.programs[0].steps)


def _scalar(kind: str, v: float) -> float:
    if kind == "hardsigmoid":
        return min(max(v + 3, 0.0), 6.0) / 6
    if kind == "hardswish":
        return v * min(max(v + 3, 0.0), 6.0) / 6
    if kind == "leakyrelu":
        return v if v > 0 else 0.01 * v
    if kind == "elu":
        return v if v > 0 else math.expm1(v)
    assert kind == "mish"
    return v * math.tanh(math.log1p(math.exp(v)))


@pytest.mark.parametrize("kind", ["hardsigmoid", "hardswish", "leakyrelu", "elu", "mish"])
def test_activation_matches_scalar_reference(kind: str) -> None:
    (step,) = _steps(f"3x4x5 -> {kind}")
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)) * 4
    y = prepare_step(step, "float64", None)(x)
    expected = np.vectorize(lambda v: _scalar(kind, float(v)))(x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_prelu_and_scale_per_channel() -> None:
    prelu, scale = _steps("2x3x4 -> prelu -> scale")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 3, 4))
    p = prepare_step(prelu, "float64", rng)
    s = prepare_step(scale, "float64", rng)
    slope, gamma = p.params["slope"], s.params["gamma"]
    y = s(p(x))
    for index in np.ndindex(x.shape):
        v, c = x[index], index[3]
        expected = (v if v > 0 else slope[c] * v) * gamma[c]
        assert y[index] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("word, groups", [("ln", None), ("gn(2)", 2), ("gn(1, noaffine)", 1),
                                          ("instancenorm", None), ("instancenorm(affine)", None)])
def test_norms_match_loops(word: str, groups: int | None) -> None:
    (step,) = _steps(f"3x2x4 -> {word}")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 4))
    prepared = prepare_step(step, "float64", rng)
    y = prepared(x)
    n, h, w, c = x.shape
    expected = np.empty_like(x)
    for b in range(n):
        if step.kind == "ln":
            sets = [[(i, j, k) for k in range(c)] for i in range(h) for j in range(w)]
        elif step.kind == "instancenorm":
            sets = [[(i, j, k) for i in range(h) for j in range(w)] for k in range(c)]
        else:
            per = c // (groups or 1)
            sets = [[(i, j, k) for i in range(h) for j in range(w)
                     for k in range(g * per, (g + 1) * per)] for g in range(groups or 1)]
        for members in sets:
            values = [x[b, i, j, k] for i, j, k in members]
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / len(values)
            for i, j, k in members:
                expected[b, i, j, k] = (x[b, i, j, k] - mean) / math.sqrt(var + 1e-5)
    if step.affine:
        expected = expected * prepared.params["scale"] + prepared.params["shift"]
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_gate_slice_and_shuffle() -> None:
    steps = _steps("2x2x6 -> split[id | 1x1(3, nobias)] -> shuffle(3)")
    x = np.arange(24, dtype=np.float64).reshape(1, 2, 2, 6)
    first = prepare_step(steps[0], "float64", None)(x)
    assert np.shares_memory(first, x) and first.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(first, x[..., :3])
    shuffle = prepare_step(steps[-1], "float64", None)
    y = shuffle(x)
    # channel g*(C/G) + k moves to k*G + g (G = 3, C/G = 2)
    for g in range(3):
        for k in range(2):
            np.testing.assert_array_equal(y[..., k * 3 + g], x[..., g * 2 + k])
    (mul,) = [step for step in _steps("2x2x3 -> gate[gap]") if step.kind == "mul"]
    gate = np.array([2.0, 3.0, 4.0]).reshape(1, 1, 1, 3)
    xs = np.ones((1, 2, 2, 3))
    np.testing.assert_array_equal(prepare_step(mul, "float64", None)(xs, gate), xs * gate)


def test_bench_runs_the_newer_forms() -> None:
    from convcost.analysis import analyze_text
    from convcost.bench import BenchSettings, bench_models

    spec = ("8x8x8 -> gate[gap -> 1x1(2) -> relu -> 1x1(8) -> hardsigmoid] -> split[id | "
            "1x1(4) -> ln -> gn(2) -> mish] -> shuffle(2) -> prelu -> scale -> droppath -> "
            "instancenorm -> hardswish -> elu -> leakyrelu")
    # A given matrix-multiply peak: the run skips the seconds-long calibration.
    run = bench_models(analyze_text(spec).models,
                       BenchSettings(budget_s=0.05, gemm_peak_gflops=50.0))
    assert not run.errors
    (model,) = run.models
    assert model.report.bench is not None
    assert all(layer.bench is not None for layer in model.report.layers)
