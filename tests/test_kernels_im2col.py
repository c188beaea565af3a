"""The phase-planes ``im2col-gemm`` (convcost.bench.kernels.im2col) for small ``Kw*Cin``
against the direct-loop reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convcost.bench.kernels import base, im2col, make_input, prepare_step, workspace_bytes
from convcost.model.program import Shape
from tests.test_kernels import conv_step, rand, ref_conv, run

# (input HxWxC, Cout, kernel, stride, dilation, pad)
CASES = [
    ((15, 14, 3), 4, (7, 7), (2, 2), (1, 1), 3),             # the stem, small
    ((14, 14, 3), 4, (3, 3), (2, 2), (1, 1), "same"),         # TF-same (0, 1)
    ((9, 9, 4), 5, (5, 5), (1, 1), (1, 1), "same"),
    ((11, 10, 2), 3, (3, 3), (3, 2), (2, 1), 2),
    ((9, 10, 2), 3, (4, 2), (2, 2), (2, 3), "same"),
    ((6, 7, 3), 4, (3, 3), (1, 1), (1, 1), ((0, 2), (3, 0))),  # asymmetric padding
    ((3, 4, 3), 2, (3, 3), (2, 1), (1, 1), 4),               # padding wider than the kernel
    ((5, 5, 2), 3, (5, 5), (1, 1), (1, 1), "valid"),          # one output pixel
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("bias", [True, False])
def test_planes_match_reference(case: tuple[Any, ...], bias: bool) -> None:
    step = conv_step(*case, groups=1, bias=bias)
    assert im2col.uses_planes(step)
    x = rand(2, *case[0])
    y, prepared = run(step, x, algorithm="im2col-gemm")
    p = prepared.params
    np.testing.assert_allclose(y, ref_conv(x, p["weight"], p.get("bias"), step),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pixels", [3, 14, 60, 400])
def test_planes_blocks(monkeypatch: pytest.MonkeyPatch, pixels: int) -> None:
    monkeypatch.setattr(base, "CHUNK_ROWS", pixels)
    for case in (CASES[0], CASES[3]):
        step = conv_step(*case)
        x = rand(3, *case[0])
        y, prepared = run(step, x, algorithm="im2col-gemm")
        p = prepared.params
        np.testing.assert_allclose(y, ref_conv(x, p["weight"], p["bias"], step),
                                   rtol=1e-12, atol=1e-12)
        assert prepared._workspace.nbytes <= workspace_bytes(step, "im2col-gemm", 3, 8)
        # A new input array each call (as the executor passes): the fill views follow it.
        x2 = rand(3, *case[0], seed=5)
        np.testing.assert_allclose(prepared(x2), ref_conv(x2, p["weight"], p["bias"], step),
                                   rtol=1e-12, atol=1e-12)


def test_planes_only_for_short_runs() -> None:
    assert im2col.uses_planes(conv_step((32, 32, 3), 8, (7, 7), (2, 2)))
    assert not im2col.uses_planes(conv_step((8, 8, 64), 8, (3, 3), (2, 2)))
    assert not im2col.uses_planes(conv_step((8, 8, 4), 8, (3, 3), (2, 2), groups=2))


@pytest.mark.parametrize("name", ["float32", "float16"])
def test_planes_lower_precision(name: str) -> None:
    case = CASES[0]
    step = conv_step(*case)
    dtype = np.dtype(name)
    x = make_input(Shape(*case[0]), 2, dtype, np.random.default_rng(0))
    low = prepare_step(step, dtype, np.random.default_rng(3))
    y = low(x)
    assert y.dtype == dtype
    p = {k: v.astype(np.float64) for k, v in low.params.items()}
    expected = ref_conv(x.astype(np.float64), p["weight"], p["bias"], step)
    tol = 1e-4 if name == "float32" else 5e-2
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
