"""PyTorch modules and counting helpers for the torch cross-checks (``test_onnx_torch``,
``test_torch_forms``). Imported by those tests only when they run: importing torch takes
seconds, and every test process would pay it while collecting."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import torch

nn = torch.nn
F = torch.nn.functional


class SqueezeExcite(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(32), nn.Hardswish())
        self.fc1, self.fc2 = nn.Conv2d(32, 8, 1), nn.Conv2d(8, 32, 1)

    def forward(self, x: Any) -> Any:
        x = self.conv(x)
        gate = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class ShuffleUnit(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8),
                                    nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                    nn.SiLU())

    def forward(self, x: Any) -> Any:
        left, right = x.chunk(2, dim=1)
        x = torch.cat((left, self.branch(right)), dim=1)
        n, c, h, w = x.size()
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)


class ConvNeXtBlock(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm = nn.LayerNorm(16)
        self.up, self.down = nn.Linear(16, 64), nn.Linear(64, 16)
        self.scale = nn.Parameter(torch.rand(16, 1, 1))

    def forward(self, x: Any) -> Any:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(F.gelu(self.up(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.scale * y


class DenseInception(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.dense = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1))
        self.b1 = nn.Conv2d(24, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(24, 4, 1), nn.ReLU6(), nn.Conv2d(4, 8, (1, 5),
                                                                          padding=(0, 2)))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(24, 8, 1),
                                nn.Upsample(scale_factor=2))
        self.b4 = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.up = nn.ConvTranspose2d(48, 8, 4, stride=2, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: Any) -> Any:
        x = self.stem(x)
        x = torch.cat((x, self.dense(x)), 1)
        x = torch.cat((self.b1(x), self.b2(x), self.b3(x), self.b4(x)), 1)
        x = torch.flatten(F.adaptive_avg_pool2d(self.up(x), 1), 1)
        return self.head(x)


def _counts(module: Any, shape: tuple[int, ...]) -> tuple[int, int, int, bytes]:
    from torch.utils.flop_counter import FlopCounterMode

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():  # distinct values: no deduplicated initializers
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    module.eval()
    x = torch.randn(*shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for name, b in module.named_buffers()
                  if not name.endswith("num_batches_tracked"))
    stream = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), stream, opset_version=17, dynamo=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return counter.get_total_flops() // 2, params, buffers, stream.getvalue()




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


#: PyTorch twins of ``test_torch_forms.SPECS``, in order: (build the module, input C, H, W).
BUILDERS: list[tuple[Callable[[], Any], tuple[int, int, int]]] = [
    (lambda: _Gate(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(40, 10, 1), nn.ReLU(),
                                 nn.Conv2d(10, 40, 1), nn.Hardsigmoid())), (40, 14, 14)),
    (lambda: _Gate(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Sigmoid())), (8, 8, 8)),
    (lambda: nn.Sequential(_LayerNorm2d(32), nn.GroupNorm(8, 32), nn.InstanceNorm2d(32),
                           nn.InstanceNorm2d(32, affine=True), nn.PReLU(32), _Scale(32)),
     (32, 8, 8)),
    (lambda: nn.Sequential(nn.Hardswish(), nn.LeakyReLU(), nn.ELU(), nn.Mish(), nn.SiLU(),
                           nn.Identity()), (8, 8, 8)),
    (lambda: _ShuffleUnit(116), (116, 28, 28)),
    (lambda: _ConvNeXtBlock(32), (32, 14, 14)),
]


