"""``--bench --backend``: the backend check (no torch needed) and the torch backend's protocol
with an injected clock (skipped without torch). Nothing asserts on a measured time."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import pytest

from convcost.analysis import Analyzed, Options, analyze_text
from convcost.bench.backends import TORCH_INSTALL, check_backend
from convcost.bench.results import LayerBench, MachineRecord, ModelBench
from convcost.bench.run import BenchSettings
from convcost.cost.report import document
from convcost.errors import BenchRefused, UsageError
from convcost.render import analyze_csv, machine_note

# The tests that import torch share one worker: importing it takes seconds per process.
pytestmark = pytest.mark.xdist_group("torch")

PEAK = 100.0


def _models(text: str, options: Options = Options()) -> list[Analyzed]:
    return analyze_text(text, options).models


class Ticking:
    """A clock that advances ``tick`` seconds per reading: every block lasts one tick."""

    def __init__(self, tick: float = 0.125) -> None:
        self.tick = tick
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown backend 'jax'"):
        check_backend("jax")
    check_backend("numpy")


def test_missing_torch_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(UsageError) as caught:
        check_backend("torch")
    assert TORCH_INSTALL in caught.value.message and "not installed" in caught.value.message


def test_cli_refuses_a_backend_it_cannot_run(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    result = run("analyze", "8x8x4 -> 1x1(4)", "--bench", "--backend", "torch")
    assert result.exit_code == 2
    assert f"install it with: {TORCH_INSTALL}" in result.stderr
    # without --bench the backend is never asked for, and a note says it does nothing
    for command in (["analyze", "8x8x4 -> 1x1(4)"],
                    ["compare", "8x8x4 -> 1x1(4)", "8x8x4 -> 1x1(8)"]):
        result = run(*command, "--backend", "torch")
        assert result.exit_code == 0
        assert "--backend torch only applies with --bench" in result.stderr
    assert "only applies" not in run("analyze", "8x8x4 -> 1x1(4)").stderr


def test_machine_note_and_csv_name_the_backend() -> None:
    record = MachineRecord(blas="torch 2.13.0", blas_arch="cpu", threads=1, cpu_count=2,
                           gemm_peak_gflops=50.0, dtype="float32", backend="torch")
    assert machine_note(record).startswith("benchmarked with the torch backend: torch 2.13.0 "
                                           "(cpu), 1 torch thread on 2 CPUs")
    assert machine_note(record).endswith("float32 matrix-multiply peak 50.0 GFLOP/s")
    unmeasured = dataclasses.replace(record, gemm_peak_gflops=0.0, dtype="bfloat16")
    assert machine_note(unmeasured).endswith("bfloat16 matrix-multiply peak not measured")
    assert record.to_json()["backend"] == "torch"
    model = _models("8x8x4 -> 1x1(4)")[0]
    timing = LayerBench(0.5, 0.0, 0.0, None, "torch")
    bench = ModelBench(0.5, 0.0, 5, 1, 0.0, True, (), (timing,), backend="torch")
    report = model.report._replace(bench=bench, layers=tuple(
        layer._replace(bench=timing) for layer in model.report.layers))
    lines = analyze_csv([report]).splitlines()
    assert lines[0].endswith(",time_s,iqr_s,gflops,efficiency,algorithm,stable,backend")
    assert lines[1].endswith(",0.5,0.0,0.0,,torch,True,torch")


# --- with torch --------------------------------------------------------------------------------

def test_torch_backend_measures_every_layer(validate: Callable[[Any], None]) -> None:
    pytest.importorskip("torch")
    from convcost.bench.backends.torch import bench_models

    models = _models("a: 16x16x8 -> 3x3(16) -> relu -> res[1x1(16)] -> maxpool2x2 -> fc(10)\n"
                     "b: 8x8x4 -> split[1x1(2) | 3x3(2)] -> gate[gap -> 1x1(4) -> sigmoid]\n",
                     Options(batch=2))
    steps: list[tuple[int, int, str, str]] = []
    result = bench_models(models, BenchSettings(batch=2, gemm_peak_gflops=PEAK, threads=1),
                          "torch", lambda *args: steps.append(args), clock=Ticking())
    assert result.errors == () and result.machine.backend == "torch"
    assert result.machine.blas.startswith("torch ") and result.machine.threads >= 1
    for model in result.models:
        bench = model.report.bench
        assert isinstance(bench, ModelBench) and bench.backend == "torch"
        # One tick per timed block of one call: median 0.125 s, 5 repeats.
        assert (bench.median_s, bench.repeats, bench.loops, bench.stable) == (0.125, 5, 1, True)
        assert len(bench.layers) == len(model.report.layers)
        for layer in model.report.layers:
            assert layer.bench is not None and layer.bench.algorithm == "torch"
            assert layer.bench.median_s == 0.125
    conv = result.models[0].report.layers[0].bench
    assert conv is not None and conv.efficiency == conv.gflops / PEAK
    assert [what for *_, what in steps if _[0] == 1] == [
        "building the PyTorch module", "timing the chain", "timing each layer"]
    validate(document([model.report for model in result.models], [], **result.to_json()))


def test_torch_backend_refusals_are_located() -> None:
    pytest.importorskip("torch")
    from convcost.bench.backends.torch import bench_models

    models = _models("small: 8x8x4 -> 1x1(4)\nhuge: 2048x2048x64 -> 3x3(64)\n")
    # One thread: torch's default two would wait on a core the other test worker holds.
    result = bench_models(models, BenchSettings(gemm_peak_gflops=PEAK, max_memory=64 * 10**6,
                                                threads=1), "torch", clock=Ticking())
    assert [model.report.bench is not None for model in result.models] == [True, False]
    (error,) = result.errors
    assert isinstance(error, BenchRefused) and (error.source, error.line) == ("<arg>", 2)
    assert error.message.startswith("benchmark of 'huge' refused: benchmark needs an estimated")

    result = bench_models(_models("8x8x4 -> 1x1(4)"), BenchSettings(dtype="int8",
                          gemm_peak_gflops=PEAK, threads=1), "torch", clock=Ticking())
    (error,) = result.errors
    assert error.kind == "dtype" and "int8" in error.message


def test_torch_cuda_without_a_device_is_a_usage_error(run: Any) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(UsageError, match="needs a CUDA device"):
        check_backend("torch-cuda")
    result = run("compare", "8x8x4 -> 1x1(4)", "8x8x4 -> 3x3(4)", "--bench", "--backend",
                 "torch-cuda")
    assert result.exit_code == 2 and "needs a CUDA device" in result.stderr
