"""The newer forms against real PyTorch modules: MACs (FlopCounterMode total / 2), params and
output shapes must agree exactly. Skipped when torch is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from convcost.analysis import analyze_text

# The tests that import torch share one worker: importing it takes seconds per process.
pytestmark = [pytest.mark.xdist_group("torch"),
              pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")]

#: Chains of the newer forms; ``tests/torch_blocks.BUILDERS`` holds their PyTorch twins.
SPECS = [
    "14x14x40 -> gate[gap -> 1x1(10) -> relu -> 1x1(40) -> hardsigmoid]",
    "8x8x8 -> gate[3x3(8) -> sigmoid]",
    "8x8x32 -> ln -> gn(8) -> instancenorm -> instancenorm(affine) -> prelu -> scale",
    "8x8x8 -> hardswish -> leakyrelu -> elu -> mish -> silu -> droppath",
    "28x28x116 -> split[id | 1x1(58, nobias) -> bn -> relu -> 3x3(dw, nobias) -> bn "
    "-> 1x1(58, nobias) -> bn -> relu] -> shuffle(2)",
    "14x14x32 -> res[7x7(dw) -> ln -> 1x1(128) -> gelu -> 1x1(32) -> scale -> droppath(0.1)]",
]


@pytest.mark.parametrize("number, spec", list(enumerate(SPECS)), ids=[s[:40] for s in SPECS])
def test_new_forms_match_pytorch(number: int, spec: str) -> None:
    from tests import torch_blocks

    build, chw = torch_blocks.BUILDERS[number]
    result = analyze_text(spec)
    assert result.errors == []
    report = result.reports[0]
    macs, params, shape = torch_blocks._counted(build(), chw)
    assert report.totals.macs == macs
    assert report.totals.params == params
    assert tuple(report.output) == shape
