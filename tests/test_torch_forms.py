"""The newer forms against real PyTorch modules: MACs (FlopCounterMode total / 2), params and
output shapes must agree exactly. Skipped when torch is not installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from convcost.analysis import analyze_text

torch = pytest.importorskip("torch")
nn = torch.nn


def _counted(module: Any, chw: tuple[int, int, int]) -> tuple[int, int, tuple[int, ...]]:
    """(MACs, params, output shape (H, W, C)) of ``module`` on one sample."""
    from torch.utils.flop_counter import FlopCounterMode

    module.eval()
    x = torch.zeros(1, *chw)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = module(x)
    params = sum(p.numel() for p in module.parameters())
    shape = tuple(y.shape[2:]) + (y.shape[1],) if y.dim() == 4 else (1, 1, y.shape[1])
    return counter.get_total_flops() // 2, params, shape


class _Gate(nn.Module):  # type: ignore[misc]
    def __init__(self, gate: Any) -> None:
        super().__init__()
        self.gate = gate

    def forward(self, x: Any) -> Any:
        return x * self.gate(x)


class _LayerNorm2d(nn.LayerNorm):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Scale(nn.Module):  # type: ignore[misc]
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: Any) -> Any:
        return x * self.gamma


class _ShuffleUnit(nn.Module):  # type: ignore[misc]
    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x: Any) -> Any:
        a, b = x.chunk(2, dim=1)
        out = torch.cat((a, self.branch(b)), dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class _ConvNeXtBlock(nn.Module):  # type: ignore[misc]
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.down = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Any) -> Any:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(self.act(self.up(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


CASES: list[tuple[str, Callable[[], Any], tuple[int, int, int]]] = [
    ("14x14x40 -> gate[gap -> 1x1(10) -> relu -> 1x1(40) -> hardsigmoid]",
     lambda: _Gate(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(40, 10, 1), nn.ReLU(),
                                 nn.Conv2d(10, 40, 1), nn.Hardsigmoid())), (40, 14, 14)),
    ("8x8x8 -> gate[3x3(8) -> sigmoid]",
     lambda: _Gate(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Sigmoid())), (8, 8, 8)),
    ("8x8x32 -> ln -> gn(8) -> instancenorm -> instancenorm(affine) -> prelu -> scale",
     lambda: nn.Sequential(_LayerNorm2d(32), nn.GroupNorm(8, 32), nn.InstanceNorm2d(32),
                           nn.InstanceNorm2d(32, affine=True), nn.PReLU(32), _Scale(32)),
     (32, 8, 8)),
    ("8x8x8 -> hardswish -> leakyrelu -> elu -> mish -> silu -> droppath",
     lambda: nn.Sequential(nn.Hardswish(), nn.LeakyReLU(), nn.ELU(), nn.Mish(), nn.SiLU(),
                           nn.Identity()), (8, 8, 8)),
    ("28x28x116 -> split[id | 1x1(58, nobias) -> bn -> relu -> 3x3(dw, nobias) -> bn "
     "-> 1x1(58, nobias) -> bn -> relu] -> shuffle(2)", lambda: _ShuffleUnit(116),
     (116, 28, 28)),
    ("14x14x32 -> res[7x7(dw) -> ln -> 1x1(128) -> gelu -> 1x1(32) -> scale -> droppath(0.1)]",
     lambda: _ConvNeXtBlock(32), (32, 14, 14)),
]


@pytest.mark.parametrize("spec, build, chw", CASES, ids=[case[0][:40] for case in CASES])
def test_new_forms_match_pytorch(spec: str, build: Callable[[], Any],
                                 chw: tuple[int, int, int]) -> None:
    result = analyze_text(spec)
    assert result.errors == []
    report = result.reports[0]
    macs, params, shape = _counted(build(), chw)
    assert report.totals.macs == macs
    assert report.totals.params == params
    assert tuple(report.output) == shape
