"""The numba kernels (convcost.bench.kernels.jit, ``direct-jit``) against the direct-loop
reference, and the switch that picks them. Skipped without numba; the NumPy kernels' own
tests run with the switch off."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from convcost.bench.executor import estimate
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
from tests.test_kernels_depthwise import CASES
from tests.test_measure import (
    test_the_estimate_covers_what_is_really_allocated as estimate_check,
)

# Found, not imported: every xdist worker collects this module, and only the one running the
# "numba" group should pay numba's import.
if importlib.util.find_spec("numba") is None:
    pytest.skip("numba is not installed (the jit extra)", allow_module_level=True)
# One worker compiles the loops (seconds per dtype on a cold numba cache), the others don't.
pytestmark = [pytest.mark.xdist_group("numba"), pytest.mark.usefixtures("jit_on")]

MORE = [
    ((6, 5, 3), 1, (3, 3), (1, 1), (1, 1), "same"),          # odd sizes, small C
    ((13, 11, 5), 1, (3, 3), (2, 2), (1, 1), ((1, 0), (0, 2))),  # stride 2, asymmetric
    ((11, 12, 2), 1, (7, 7), (1, 1), (1, 1), 3),              # wide kernel: 3+3+1 taps
    ((11, 12, 2), 1, (5, 5), (3, 3), (1, 1), "same"),         # stride 3
    ((10, 10, 3), 2, (3, 3), (2, 2), (2, 2), 1),              # multiplier, stride, dilation
    ((12, 12, 40), 1, (3, 3), (1, 1), (1, 1), "same"),        # C*width above one chunk
]


def _step(case: tuple[Any, ...], bias: bool = True) -> Any:
    shape, mult, kernel, stride, dilation, pad = case
    return conv_step(shape, shape[2] * mult, kernel, stride, dilation, pad, shape[2], bias)


# The tests run float32 (F32) only: each dtype costs seconds of compilation on a cold cache,
# and float64 runs the same loops.


def run(step: Any, x: Array, algorithm: str | None = "direct-jit") -> tuple[Array, Any]:
    prepared = prepare_step(step, F32, np.random.default_rng(0), algorithm=algorithm)
    y = prepared(x.astype(F32))
    assert y.shape == (x.shape[0], *step.output) and y.dtype == F32
    return y, prepared


def check(y: Array, x: Array, weight: Array, bias: Array | None, step: Any) -> None:
    """``y`` against the float64 reference on the same (float32) values."""
    expected = ref_conv(x.astype(F32).astype(np.float64), weight.astype(np.float64),
                        None if bias is None else bias.astype(np.float64), step)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES + MORE, ids=[str(i) for i in range(len(CASES + MORE))])
@pytest.mark.parametrize(("bias", "direct"), [(True, True), (False, True), (True, False)])
def test_depthwise_jit_matches_reference(monkeypatch: pytest.MonkeyPatch,
                                         case: tuple[Any, ...], bias: bool,
                                         direct: bool) -> None:
    """Both ways of reading unit-stride rows: in place, or from the ring of padded rows."""
    monkeypatch.setattr(jit, "DIRECT_MIN_CHANNELS", 0 if direct else 1 << 20)
    step = _step(case, bias)
    x = rand(3, *case[0])
    y, prepared = run(step, x)
    p = prepared.params
    check(y, x, p["weight"], p.get("bias"), step)
    assert prepared._workspace.nbytes <= workspace_bytes(step, "direct-jit", 3, 4)
    np.testing.assert_array_equal(prepared(x[1:2].astype(F32)), y[1:2])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[9], MORE[1]], ids=str)
def test_depthwise_jit_lanes(monkeypatch: pytest.MonkeyPatch, threads: int,
                             case: tuple[Any, ...]) -> None:
    """Rows split over two lanes (threads) give the reference's result, one scratch per
    lane, within the planned workspace."""
    monkeypatch.setattr(jit, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "blas_thread_count", lambda: threads)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    step = _step(case)
    chunk, _ = jit.plan(step, 1)
    assert len(chunk.blocks(1, step.output.h)) == 2
    for batch in (1, 3):
        x = rand(batch, *case[0])
        y, prepared = run(step, x)
        p = prepared.params
        check(y, x, p["weight"], p["bias"], step)
        assert prepared._workspace.nbytes <= workspace_bytes(step, "direct-jit", batch, 4)


def test_depthwise_jit_new_blocks_for_each_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """One sample split in two, then two samples: as many blocks, other blocks."""
    monkeypatch.setattr(jit, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "blas_thread_count", lambda: 2)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    step = _step(CASES[0])
    x = rand(2, *CASES[0][0])
    y, prepared = run(step, x[:1])
    y2 = prepared(x.astype(F32))
    np.testing.assert_array_equal(y2[:1], y)
    p = prepared.params
    check(y2, x, p["weight"], p["bias"], step)


def test_depthwise_jit_float32_and_non_contiguous_input() -> None:
    step = _step(CASES[1])
    dtype = np.dtype(np.float32)
    x = make_input(Shape(*CASES[1][0]), 2, dtype, np.random.default_rng(0))
    low = prepare_step(step, dtype, np.random.default_rng(3))
    assert low.algorithm == "direct-jit"
    y = low(x)
    assert y.dtype == dtype
    p = {k: v.astype(np.float64) for k, v in low.params.items()}
    expected = ref_conv(x.astype(np.float64), p["weight"], p["bias"], step)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    wide = np.repeat(x, 2, axis=3)[..., ::2]  # a strided view of the same values
    np.testing.assert_allclose(low(wide), y, rtol=0, atol=0)


def test_weights_can_be_replaced() -> None:
    step = _step(CASES[9])
    x = rand(2, *CASES[9][0])
    prepared = prepare_step(step, F32, np.random.default_rng(0))
    assert prepared.algorithm == "direct-jit"
    weight = rand(*prepared.params["weight"].shape, seed=7).astype(F32)
    prepared.set_params(weight=weight)
    check(prepared(x.astype(F32)), x, weight, prepared.params["bias"], step)


def test_switch_and_dtypes(monkeypatch: pytest.MonkeyPatch) -> None:
    step = _step(CASES[0])
    monkeypatch.delenv(jit.ENV, raising=False)
    assert jit.enabled() and choose_algorithm(step) == "direct-jit"
    assert choose_algorithm(step, "float64") == "direct-jit"
    assert choose_algorithm(step, "float16") == "direct"  # numba: no float16 arithmetic
    assert prepare_step(step, "float16", None).algorithm == "direct"
    for off in ("0", "off", "False", " no "):
        monkeypatch.setenv(jit.ENV, off)
        assert not jit.enabled() and choose_algorithm(step) == "direct"
    monkeypatch.setenv(jit.ENV, "1")
    assert choose_algorithm(step) == "direct-jit"
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(step, "float16", None, algorithm="direct-jit")
    with pytest.raises(ValueError, match="cannot run"):
        prepare_step(conv_step((5, 5, 4), 4, (3, 3)), "float32", None, algorithm="direct-jit")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_estimates_follow_the_chosen_kernel(monkeypatch: pytest.MonkeyPatch,
                                            dtype: str) -> None:
    """Weights and workspace are counted for the kernel that runs at that dtype."""
    monkeypatch.delenv(jit.ENV, raising=False)
    step = _step(MORE[1])
    algorithm = "direct-jit" if dtype == "float32" else "direct"
    itemsize = np.dtype(dtype).itemsize
    prepared = prepare_step(step, dtype, np.random.default_rng(0))
    assert prepared.algorithm == algorithm
    held = sum(a.nbytes for a in prepared.params.values())
    assert prepared.param_bytes == weight_bytes(step, dtype) >= held
    prepared(make_input(step.input, 2, np.dtype(dtype), np.random.default_rng(1)))
    assert prepared._workspace.nbytes <= workspace_bytes(step, algorithm, 2, itemsize)


def test_estimate_of_a_program_uses_the_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcost.analysis import analyze_text

    monkeypatch.delenv(jit.ENV, raising=False)
    program = analyze_text("32x32x16 -> 3x3(dw, s=2) -> 1x1(8)").models[0].program
    on = estimate(program, 1, "float32")
    monkeypatch.setenv(jit.ENV, "0")
    off = estimate(program, 1, "float32")
    assert on.weights != off.weights  # tiled differently: each counts its own kernel


def test_numba_is_not_imported_by_analysis() -> None:
    """`convcost analyze` without --bench never imports numba (0.25 s of start-up)."""
    code = ("import sys\nfrom convcost.cli import main\n"
            "from convcost.bench.kernels import choose_algorithm\n"
            "from convcost.analysis import analyze_text\n"
            "step = analyze_text('8x8x4 -> 3x3(dw)').models[0].program.steps[0]\n"
            "assert choose_algorithm(step) == 'direct-jit'\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n")
    assert importlib.util.find_spec("numba") is not None
    env = {**os.environ, jit.ENV: "1"}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)


@pytest.mark.parametrize("text", [
    "16x16x8 -> 3x3(16) -> 3x3(dw) -> 3x3(dw, s=2) -> 5x5(32, dw, d=2) -> 1x1(8)",
    "24x24x64 -> 3x3(dw, nobias) -> 3x3(dw, s=2) -> gap",
])
def test_the_memory_estimate_covers_the_jit_kernels(text: str) -> None:
    """The executor's traced peak stays within the estimate with direct-jit chosen."""
    from convcost.analysis import analyze_text

    step_algorithms = {choose_algorithm(step) for step in
                       analyze_text(text).models[0].program.steps if step.kind == "conv"}
    assert "direct-jit" in step_algorithms
    estimate_check(text, "float32")
