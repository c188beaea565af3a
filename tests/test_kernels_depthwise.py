"""The depthwise ``direct`` kernel (convcost.bench.kernels.depthwise) against the direct-loop
reference: every multiplier, stride, dilation and padding, tiny blocks, three dtypes. The
numba kernels are switched off here (``CONVCOST_JIT=0``): tests/test_kernels_jit.py has
``direct-jit``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convcost.bench.kernels import depthwise, jit, make_input, prepare_step, workspace_bytes
from convcost.bench.kernels.base import phases
from convcost.model.program import Shape
from tests.test_kernels import F64, conv_step, rand, ref_conv, run

# (input HxWxC, multiplier, kernel, stride, dilation, pad)
CASES = [
    ((9, 8, 4), 1, (3, 3), (1, 1), (1, 1), "same"),
    ((9, 8, 4), 1, (3, 3), (2, 2), (1, 1), "same"),          # TF-same (0, 1) at stride 2
    ((9, 8, 4), 1, (3, 3), (2, 2), (1, 1), 1),
    ((10, 9, 3), 1, (5, 5), (2, 2), (1, 1), "same"),
    ((10, 9, 3), 1, (5, 5), (1, 1), (1, 1), "same"),
    ((8, 11, 2), 1, (3, 3), (1, 3), (1, 1), "same"),         # stride 3 along the width
    ((9, 9, 2), 1, (3, 3), (1, 1), (2, 2), "same"),          # dilation 2
    ((12, 12, 2), 1, (3, 3), (2, 2), (2, 2), "same"),        # dilation 2 at stride 2
    ((12, 13, 2), 1, (3, 3), (2, 3), (3, 2), 2),
    ((9, 8, 3), 2, (3, 3), (1, 1), (1, 1), "same"),          # multiplier 2
    ((9, 8, 3), 3, (3, 3), (2, 2), (1, 1), "valid"),         # multiplier 3
    ((9, 8, 2), 2, (4, 4), (2, 1), (1, 1), "same"),          # even kernel
    ((7, 9, 2), 1, (1, 5), (1, 1), (1, 1), "same"),
    ((7, 6, 2), 1, (3, 3), (1, 1), (1, 1), ((0, 2), (3, 0))),  # asymmetric padding
    ((4, 5, 2), 1, (3, 3), (1, 1), (1, 1), 4),               # padding wider than the kernel
    ((3, 3, 2), 1, (3, 3), (1, 1), (1, 1), "valid"),         # a single output pixel
]


@pytest.fixture(autouse=True)
def _numpy_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jit.ENV, "0")


def _step(case: tuple[Any, ...], bias: bool = True) -> Any:
    shape, mult, kernel, stride, dilation, pad = case
    return conv_step(shape, shape[2] * mult, kernel, stride, dilation, pad, shape[2], bias)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_depthwise_matches_reference(case: tuple[Any, ...], bias: bool) -> None:
    step = _step(case, bias)
    x = rand(3, *case[0])
    y, prepared = run(step, x, algorithm="direct")
    p = prepared.params
    np.testing.assert_allclose(y, ref_conv(x, p["weight"], p.get("bias"), step),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("elements", [1, 40, 150, 400, 10_000])
@pytest.mark.parametrize("case", [CASES[1], CASES[8], CASES[10], CASES[14]], ids=str)
def test_depthwise_blocks(monkeypatch: pytest.MonkeyPatch, elements: int,
                          case: tuple[Any, ...]) -> None:
    """Blocks of one row, several rows, one and several samples; the workspace stays within
    the plan."""
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", elements)
    step = _step(case)
    x = rand(3, *case[0])
    y, prepared = run(step, x)
    p = prepared.params
    np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step),
                               rtol=1e-12, atol=1e-12)
    assert prepared._workspace.nbytes <= workspace_bytes(step, "direct", 3, 8)
    y2 = prepared(x[:1])  # another batch size: new blocks, new views
    np.testing.assert_allclose(y2, y[:1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["float32", "float16"])
def test_depthwise_lower_precision(name: str) -> None:
    step = _step(CASES[10])
    dtype = np.dtype(name)
    x = make_input(Shape(*CASES[10][0]), 2, dtype, np.random.default_rng(0))
    low = prepare_step(step, dtype, np.random.default_rng(3))
    y = low(x)
    assert y.dtype == dtype
    p = {k: v.astype(np.float64) for k, v in low.params.items()}
    expected = ref_conv(x.astype(np.float64), p["weight"], p["bias"], step)
    tol = 1e-5 if name == "float32" else 2e-2
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_depthwise_weights_can_be_replaced() -> None:
    step = _step(CASES[9])
    x = rand(2, *CASES[9][0])
    prepared = prepare_step(step, F64, np.random.default_rng(0))
    prepared(x)
    weight = rand(*prepared.params["weight"].shape, seed=7)
    prepared.set_params(weight=weight)
    np.testing.assert_allclose(prepared(x), ref_conv(x, weight, prepared.params["bias"], step),
                               rtol=1e-12, atol=1e-12)


def test_depthwise_accepts_non_contiguous_input() -> None:
    step = _step(CASES[1])
    x = rand(3, 9, 8, 8)[..., ::2]  # every other channel: a strided view
    y, prepared = run(step, x)
    p = prepared.params
    np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step),
                               rtol=1e-12, atol=1e-12)


def test_phases_group_taps_by_stride_phase() -> None:
    # 3 taps, stride 2: taps 0 and 2 read phase 0 at offsets 0 and 1, tap 1 phase 1.
    assert phases(3, 2, 1, 5) == ((0, 1), ((0, 0, 1, (0, 2)), (1, 0, 1, (1,))), 6)
    # Dilation 2 at stride 2: all taps on phase 0, offsets 0, 1, 2.
    assert phases(3, 2, 2, 4) == ((0,), ((0, 0, 1, (0, 1, 2)),), 6)
    # Stride 1: one plane, unit steps.
    assert phases(5, 1, 3, 7).groups == ((0, 0, 3, (0, 1, 2, 3, 4)),)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("case", [CASES[1], CASES[9], CASES[11]], ids=str)
def test_depthwise_lanes(monkeypatch: pytest.MonkeyPatch, threads: int,
                         case: tuple[Any, ...]) -> None:
    """Blocks split over threads (as many lanes as BLAS threads, scratch per lane) give the
    same result as one lane; a one-block step is split in two for two CPUs."""
    monkeypatch.setattr(depthwise, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "blas_thread_count", lambda: threads)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    step = _step(case)
    chunk, shapes = depthwise.plan(step, 1)
    assert len(chunk.blocks(1, step.output.h)) == 2 and len(shapes) in (2, 4)
    for batch in (1, 3):
        x = rand(batch, *case[0])
        y, prepared = run(step, x)
        p = prepared.params
        np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step),
                                   rtol=1e-12, atol=1e-12)
        assert prepared._workspace.nbytes <= workspace_bytes(step, "direct", batch, 8)


def test_depthwise_worker_errors_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(depthwise, "cpu_count", lambda: 2)
    monkeypatch.setattr(depthwise, "blas_thread_count", lambda: 2)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_WORK", 1)
    step = _step(CASES[0])
    prepared = prepare_step(step, F64, np.random.default_rng(0))
    calls: list[int] = []

    def failing(self: Any, x: Any, out: Any, ops: Any) -> None:
        calls.append(len(ops))
        if len(calls) > 1:
            raise RuntimeError("lane failed")

    monkeypatch.setattr(depthwise.DepthwisePlan, "_run", failing)
    with pytest.raises(RuntimeError, match="lane failed"):
        prepared(rand(1, *CASES[0][0]))
    assert len(calls) == 2


def test_blas_thread_count_is_positive() -> None:
    assert depthwise.blas_thread_count() >= 1
