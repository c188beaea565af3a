"""The PyTorch exporter: readable source that compiles without torch; with torch, every
example and zoo model rebuilt in PyTorch has convcost's MACs (FlopCounterMode), params, bn
buffers and output shape, and tricky padding matches the NumPy executor numerically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from convcost.analysis import Analysis, analyze_arguments, analyze_text
from convcost.export import export_torch

# The tests that import torch share one worker: importing it takes seconds per process.
pytestmark = pytest.mark.xdist_group("torch")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(path) for path in (ROOT / "examples").glob("*.convcost"))
ZOO = sorted(str(path) for path in (ROOT / "examples" / "zoo").glob("*.convcost"))

#: Every kind and padding form the exporter writes specially, in small sizes.
TRICKY = """\
pads: 17x15x4 -> 3x3(6, s=2) -> 4x4(6) -> 3x3(6, p=valid, d=2) -> 2x3(6, p=1x0, nobias) \
-> 3x3(6, g=2, s=2x1) -> 3x3(dw) -> relu6
pools: 9x7x4 -> maxpool3x3(s=2) -> avgpool3x3(s=2) -> up2 -> avgpool3x3(s=1) \
-> avgpool2x2(s=1) -> maxpool2x2(s=1) -> avgpool3x3(s=2, p=1, ceil) -> maxpool3x3(s=2, p=valid, ceil)
deconvs: 5x6x4 -> deconv4x4(6, s=2) -> deconv3x3(4, s=2) -> deconv2x2(4, s=3) \
-> deconv3x3(3, s=1, p=1) -> deconv3x3(3, s=2, p=valid, nobias)
blocks: 8x8x8 -> res[1x1(8) -> relu] -> [split[3x3(4) | 1x1(4)] -> shuffle(2) | id] \
-> gate[gap -> 1x1(4) -> relu -> 1x1(16) -> sigmoid] -> res[3x3(16, s=2) | 1x1(16, s=2)] \
-> gate[3x3(16) -> hardsigmoid] -> softmax -> prelu -> gap -> fc(10) -> leakyrelu(0.01) -> fc(5)
head: 4x4x3 -> fc(8) -> relu -> 1x1(4) -> bn -> ln -> gn(2) -> scale -> hardswish -> tanh
"""


def _exported(analysis: Analysis) -> dict[str, Any]:
    source = export_torch(analysis.programs).source
    namespace: dict[str, Any] = {}
    exec(compile(source, "<export>", "exec"), namespace)
    return namespace


def test_source_compiles_without_torch() -> None:
    analysis = analyze_arguments([*EXAMPLES, *ZOO, TRICKY])
    assert not analysis.errors
    exported = export_torch(analysis.programs)
    compile(exported.source, "<export>", "exec")
    assert "import torch" in exported.source
    assert len(set(exported.classes)) == len(exported.classes) == len(analysis.programs)
    assert len(set(exported.names)) == len(exported.names)
    for cls in exported.classes:
        assert cls.isidentifier()
        assert re.search(rf"^class {cls}\(nn\.Module\):$", exported.source, re.M)


def test_seed_pair_golden() -> None:
    analysis = analyze_arguments(["256 -> 4x4(256)", "256 -> 1x1(64) -> 4x4(256)"])
    source = export_torch(analysis.programs).source
    assert '''\
class Chain2(nn.Module):
    """convcost model '256 -> 1x1(64) -> 4x4(256)' (<arg>:1):
    input (N, 256, 1, 1), output (N, 256, 1, 1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Conv2d(256, 64, 1)  # 1: 1x1(64)
        self.l2 = nn.Conv2d(64, 256, 4)  # 2: 4x4(256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.l1(x)
        x = self.l2(F.pad(x, (1, 2, 1, 2)))
        return x
''' in source
    assert '''\
MODELS = {
    '256 -> 4x4(256)': Chain1,
    '256 -> 1x1(64) -> 4x4(256)': Chain2,
}''' in source
    assert "'256 -> 4x4(256)': (256, 1, 1)," in source


def test_forward_spells_out_blocks() -> None:
    source = export_torch(analyze_text(TRICKY).programs).source
    assert "torch.cat([" in source
    assert re.search(r"x = x\d+ \* x  # \d+\.mul", source)  # a gate
    assert "x3 = x + x0  # 1.add" in source  # a residual
    assert "[:, 0:4]" in source  # a split's channel slice
    assert "F.pad(x, (0, 1, 0, 1), value=float('-inf'))" in source  # same max pool
    assert "class AvgPoolSame(nn.Module):" in source
    assert "count_include_pad=False" in source
    assert "ceil_mode=True" in source
    assert "torch.flatten(x, 1)" in source
    assert "nn.LeakyReLU(negative_slope=0.01)" in source


def test_names_become_identifiers() -> None:
    first = analyze_text("class: 8x8x3 -> 1x1(4)\n2nd-try: 8x8x3 -> 1x1(6)\n", source_name="a.convcost")
    second = analyze_text("class: 8x8x3 -> 1x1(5)\n", source_name="b.convcost")
    exported = export_torch([*first.programs, *second.programs])
    assert exported.classes == ("Class", "Model2ndTry", "Class_2")
    assert exported.names == ("class", "2nd-try", "class_2")


def test_class_names_never_shadow_the_module_globals() -> None:
    analysis = analyze_text("f: 8x8x3 -> 1x1(4)\nlayer_scale: 8x8x3 -> scale\n"
                            "None: 8x8x3 -> relu\n", source_name="g.convcost")
    exported = export_torch(analysis.programs)
    assert exported.classes == ("F_2", "LayerScale_2", "ModelNone")
    assert "class LayerScale(nn.Module):" in exported.source


def test_hostile_text_stays_in_comments() -> None:
    exported = export_torch(analyze_text('8x8x3 -> 1x1(4)').programs,
                            origin='a """ b \\ c\nd')
    compile(exported.source, "<export>", "exec")


def test_cli_writes_file_and_reports_skipped(run: Any, tmp_path: Path) -> None:
    spec = tmp_path / "two.convcost"
    spec.write_text("good: 8x8x3 -> 3x3(4, s=2)\nbad: 8x8x3 -> 3x3(4, g=2)\n")
    target = tmp_path / "out.py"
    result = run("export", str(spec), "--to", "torch", "-o", str(target))
    assert result.exit_code == 2
    assert "two.convcost:2:15: error: channels not divisible by groups" in result.stderr
    assert "export skipped what failed above (1 error)" in result.stderr
    assert "wrote 1 model to" in result.stderr
    assert "class Good(nn.Module):" in target.read_text()
    assert "Bad" not in target.read_text()

    result = run("export", "8x8x3 -> 1x1(4)", "--to", "torch")
    assert result.exit_code == 0
    assert result.stdout.startswith('"""PyTorch modules generated by convcost')
    compile(result.stdout, "<stdout>", "exec")

    result = run("export", "8x8x3 -> 1x1(4)")
    assert result.exit_code == 2 and "Missing option '--to'" in result.stderr
    result = run("export", "8x8x3 -> 1x1(4, g=3)", "--to", "torch")
    assert result.exit_code == 2 and "nothing to export" in result.stderr
    assert "the other models are exported" not in result.stderr  # there are none
    result = run("export", "8x8x3 -> 1x1(4)", "--to", "torch", "-o",
                 str(tmp_path / "missing" / "out.py"))
    assert result.exit_code == 2 and "cannot write" in result.stderr


# --- with torch --------------------------------------------------------------------------------

def _check_counts(files: list[str]) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    analysis = analyze_arguments(files)
    assert not analysis.errors
    namespace = _exported(analysis)
    names = export_torch(analysis.programs).names
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # Batch norms pass their input through: FlopCounterMode counts none of their work, they
    # keep the shape, and their parameters and buffers are counted from the modules below;
    # on the meta device their forward was half of this test's time. (Their arithmetic is
    # checked against the NumPy executor in test_values_match_numpy_executor.)
    batch_norm = torch.nn.modules.batchnorm._BatchNorm
    try:
        for (program, report), name in zip(analysis.models, names):
            with torch.device("meta"):  # counts and shapes need no real weights or data
                model = namespace["MODELS"][name]().eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter, \
                    mock.patch.object(batch_norm, "forward", lambda self, x: x):
                y = model(torch.zeros(1, *namespace["INPUT_SHAPES"][name], device="meta"))
            params = sum(p.numel() for p in model.parameters())
            buffers = sum(b.numel() for key, b in model.named_buffers()
                          if not key.endswith("num_batches_tracked"))
            out = program.output
            shapes = [(out.c, out.h, out.w)] + ([(out.c,)] if out.h == out.w == 1 else [])
            totals = report.totals
            assert (counter.get_total_flops() // 2, params, buffers) == \
                (totals.macs, totals.params, totals.buffers), name
            assert tuple(y.shape[1:]) in shapes, name
    finally:
        torch.set_num_threads(threads)


def test_examples_match_convcost_counts() -> None:
    _check_counts([*EXAMPLES])
    _check_counts([TRICKY])


@pytest.mark.zoo
def test_zoo_matches_convcost_counts() -> None:
    _check_counts(ZOO)


def _torch_params(step: Any, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The NumPy kernel's parameters of ``step`` in PyTorch's layouts and names."""
    kind = step.kind
    found: dict[str, np.ndarray] = {}
    if "weight" in params:
        weight = params["weight"]
        if kind == "conv":  # (kh, kw, cin/g, cout) -> (cout, cin/g, kh, kw)
            weight = weight.transpose(3, 2, 0, 1)
        elif kind == "deconv":  # (cin, kh, kw, cout/g) -> (cin, cout/g, kh, kw)
            weight = weight.transpose(0, 3, 1, 2)
        else:  # fc: (h*w*c, cout) in channels-last order -> (cout, c*h*w)
            h, w, c = step.input
            weight = weight.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, h * w * c)
        found["weight"] = weight
    if "bias" in params:
        found["bias"] = params["bias"]
    if kind == "bn":
        found.update(weight=params["scale"], bias=params["shift"])
    elif "scale" in params:  # norms
        found.update(weight=params["scale"], bias=params["shift"])
    if "slope" in params:
        found["weight"] = params["slope"]
    if "gamma" in params:
        found["gamma"] = params["gamma"]
    return found


def test_values_match_numpy_executor() -> None:
    torch = pytest.importorskip("torch")
    from convcost.bench.executor import Executor

    analysis = analyze_text(TRICKY)
    namespace = _exported(analysis)
    names = export_torch(analysis.programs).names
    for program, name in zip(analysis.programs, names):
        executor = Executor(program, "float64", batch=2, seed=1)
        x = executor.make_input()
        expected = executor.run(x.copy())
        model = namespace["MODELS"][name]().double().eval()
        for step, kernel in zip(program.steps, executor.kernels):
            if not kernel.params:
                continue
            module = getattr(model, "l" + re.sub(r"\W", "_", step.path))
            for key, value in _torch_params(step, kernel.params).items():
                getattr(module, key).data.copy_(torch.from_numpy(np.ascontiguousarray(value))
                                                .reshape(getattr(module, key).shape))
            if step.kind == "bn":  # inference bn with mean 0 and var + eps = 1: x*scale+shift
                module.running_var.fill_(1.0 - module.eps)
        with torch.no_grad():
            y = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
        got = y.numpy()
        if got.ndim == 4:
            got = got.transpose(0, 2, 3, 1)
        np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-4,
                                   atol=1e-4, err_msg=name)
