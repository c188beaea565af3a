"""Round trips through PyTorch (skipped without torch and onnx): small modules for the blocks
of today's CNNs are exported with ``torch.onnx.export`` and analysed; MACs must equal
FlopCounterMode's FLOPs / 2, params the modules' parameter count, buffers the batch-norm
running statistics."""

from __future__ import annotations

import importlib.util

import pytest

from convcost.cost.report import build_report
from convcost.importers.onnx import read_onnx

# The tests that import torch share one worker: importing it takes seconds per process.
pytestmark = [pytest.mark.xdist_group("torch"), pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None,
    reason="needs torch and onnx")]


@pytest.mark.parametrize("module, shape", [
    ("SqueezeExcite", (1, 16, 12, 12)), ("ShuffleUnit", (1, 16, 10, 10)),
    ("ConvNeXtBlock", (1, 16, 9, 9)), ("DenseInception", (1, 16, 32, 32)),
], ids=["se", "shuffle", "convnext", "dense_inception"])
def test_torch_export_counts_match(module: str, shape: tuple[int, ...]) -> None:
    from tests import torch_blocks

    macs, params, buffers, data = torch_blocks._counts(getattr(torch_blocks, module)(), shape)
    program = read_onnx(data, "m", size=None, batch=None, source="m.onnx")
    totals = build_report(program, source="m.onnx", spec="").totals
    assert (totals.macs, totals.params, totals.buffers) == (macs, params, buffers)
