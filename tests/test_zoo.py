"""The model zoo: 19 torchvision networks written in the chain language, exact.

Each ``examples/zoo/<name>.convcost`` must reproduce torchvision's published parameter count,
and the MACs (FlopCounterMode total / 2), buffers (batch-norm running mean and variance) and
1000-class output measured from torchvision itself (``tests/data/zoo_reference.json``, made
by ``benchmarks/zoo_reference.py``). With torchvision importable, the models are also built
and counted live.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcost.analysis import Options, analyze_source
from convcost.cost.report import ModelReport
from convcost.errors import Source

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "examples" / "zoo"
REFERENCE = json.loads((Path(__file__).parent / "data" / "zoo_reference.json")
                       .read_text(encoding="utf-8"))["models"]

#: Published parameter counts (torchvision's model documentation).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512, "resnet50": 25_557_032, "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240, "vgg11_bn": 132_868_840, "alexnet": 61_100_840,
    "squeezenet1_1": 1_235_496, "googlenet": 6_624_904, "inception_v3": 23_834_568,
    "densenet121": 7_978_856, "mobilenet_v2": 3_504_872, "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856, "efficientnet_b0": 5_288_548, "mnasnet1_0": 4_383_312,
    "shufflenet_v2_x1_0": 2_278_604, "regnet_y_400mf": 4_344_144,
    "regnet_x_400mf": 5_495_976, "convnext_tiny": 28_589_128,
}


def _report(name: str) -> ModelReport:
    path = ZOO / f"{name}.convcost"
    result = analyze_source(Source(str(path), path.read_text(encoding="utf-8")), Options())
    assert result.errors == [], [str(error) for error in result.errors]
    assert [report.name for report in result.reports] == [name]
    return result.reports[0]


def test_the_zoo_has_the_19_models() -> None:
    assert sorted(path.stem for path in ZOO.glob("*.convcost")) == sorted(PUBLISHED_PARAMS)
    assert sorted(REFERENCE) == sorted(PUBLISHED_PARAMS)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_zoo_model_is_exact(name: str) -> None:
    report = _report(name)
    reference = REFERENCE[name]
    assert report.totals.params == PUBLISHED_PARAMS[name] == reference["params"]
    assert report.totals.macs == reference["macs"]
    assert report.totals.buffers == reference["buffers"]
    assert list(report.input) == reference["input"]
    assert list(report.output) == [1, 1, 1000]


# torchvision first: without it, skip before paying torch's import (seconds); with it, run
# in the worker that has torch already.
@pytest.mark.xdist_group("torch")
@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_zoo_model_against_torchvision(name: str) -> None:
    models = pytest.importorskip("torchvision.models")
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    kwargs = {"aux_logits": False, "init_weights": False} \
        if name in ("googlenet", "inception_v3") else {}
    model = getattr(models, name)(weights=None, **kwargs).eval()
    size = 299 if name == "inception_v3" else 224
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, 3, size, size))
    buffers = sum(buffer.numel() for key, buffer in model.named_buffers()
                  if key.endswith(("running_mean", "running_var")))
    report = _report(name)
    assert report.totals.macs == counter.get_total_flops() // 2
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.buffers == buffers
    assert tuple(out.shape) == (1, 1000)
