"""Benchmarking networks for real: the execution program, shape checks, the resource guard,
and --bench / calibrate end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from click.testing import Result

from convcost.analysis import Options, analyze_inputs, analyze_text
from convcost.bench.timing import TimingPolicy
from convcost.inputs import collect
from convcost.bench.executor import BenchRefused, Program, bench_network, schedule
from convcost.model.program import Layer, Network, Shape
from tests.conftest import EXAMPLES, ROOT

Run = Callable[..., Result]
FAST = TimingPolicy(warmup=1, min_block_s=0.001, repeats=5)


def _one(text: str, size: tuple[int, int] | None = None) -> tuple[Network, Any]:
    analysis = analyze_text(text, Options(size=size))
    assert analysis.errors == []
    return analysis.networks[0], analysis.reports[0]


def test_schedule_follows_execution_order_and_wires_blocks() -> None:
    network, _ = _one("8x8x4 -> [1x1(2) | id | 3x3(2) -> relu] -> res[1x1(8) | 1x1(8)] -> gap")
    steps, result = schedule(network)
    assert [step.layer.path for step in steps] == [layer.path for layer in network.layers()]
    by_path = {step.layer.path: step for step in steps}
    assert by_path["1.b1.1"].inputs == (0,)
    assert by_path["1.b3.1"].inputs == (0,)
    assert by_path["1.concat"].inputs == (by_path["1.b1.1"].out, by_path["1.b2.1"].out,
                                          by_path["1.b3.2"].out)
    assert by_path["2.add"].inputs == (by_path["2.body.1"].out, by_path["2.short.1"].out)
    assert result == by_path["3"].out


def test_bench_network_measures_every_layer() -> None:
    network, report = _one("16x16x8 -> 3x3(16) -> relu -> res[1x1(16)] -> maxpool2x2 -> fc(10)")
    bench = bench_network(network, report, dtype="float32", batch=2, policy=FAST,
                          peak_gflops=100.0, max_memory=None)
    assert len(bench.layers) == len(report.layers)
    assert bench.chain.repeats >= 5 and bench.chain.median_s > 0
    conv = bench.layers[0]
    assert conv.gflops > 0 and conv.efficiency == pytest.approx(conv.gflops / 100.0)
    assert bench.layers[1].efficiency is None  # relu has no MACs
    assert all(layer.algorithm for layer in bench.layers)
    assert bench.gflops == pytest.approx(report.totals.flops / bench.chain.median_s / 1e9)


def test_resource_guard_refuses_before_allocating() -> None:
    network, report = _one("1024x1024x256 -> 3x3(256)")
    with pytest.raises(BenchRefused, match=r"benchmark needs an estimated .* above the limit "
                                           r"of 1.00 MiB"):
        bench_network(network, report, dtype="float32", batch=64, policy=FAST,
                      peak_gflops=None, max_memory=2**20)


def test_unsupported_dtype_is_refused_clearly() -> None:
    network, report = _one("8x8x4 -> 1x1(4)")
    with pytest.raises(BenchRefused, match="bfloat16"):
        bench_network(network, report, dtype="bfloat16", batch=1, policy=FAST,
                      peak_gflops=None, max_memory=None)


def test_a_shape_mismatch_is_reported_as_a_bug() -> None:
    network, report = _one("8x8x4 -> 1x1(4)")
    layer = network.nodes[0]
    assert isinstance(layer, Layer)
    wrong = network._replace(nodes=(layer._replace(output=Shape(4, 4, 4)),))
    with pytest.raises(BenchRefused, match=r"layer 1 '1x1\(4\)' produced \(1, 8, 8, 4\), but "
                                           r"the analysis says \(1, 4, 4, 4\); this is a bug"):
        bench_network(wrong, report, dtype="float32", batch=1, policy=FAST, peak_gflops=None,
                      max_memory=None)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.convcost")), ids=lambda p: p.stem)
def test_every_example_executes_with_the_analysed_shapes(path: Path) -> None:
    from convcost import kernels

    inputs, errors = collect([str(path)])
    analysis = analyze_inputs(inputs, Options())
    assert errors == [] and analysis.errors == []
    rng = np.random.default_rng(0)
    for network in analysis.networks:
        prepared = kernels.prepare_network(network, np.dtype(np.float32), rng)
        program = Program(network, prepared.layers, batch=1)
        x = kernels.make_input(network.input, 1, np.dtype(np.float32), rng)
        program.check_shapes(x)  # raises on any difference
        assert program.run(x).shape == (1, *network.output.as_list())


# -- CLI --------------------------------------------------------------------------------------


def test_analyze_bench_json_validates(run: Run, validate: Callable[[Any], None]) -> None:
    result = run("analyze", "16x16x8 -> 3x3(16) -> relu", "--bench", "--bench-budget", "0.5",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    validate(document)
    model = document["models"][0]
    assert set(model["bench"]) >= {"median_s", "iqr_s", "repeats", "gflops", "stable"}
    assert set(model["layers"][0]["bench"]) >= {"median_s", "gflops", "efficiency", "algorithm"}
    assert set(document["machine"]) >= {"blas", "blas_arch", "threads", "gemm_peak_gflops"}


def test_compare_bench_shows_predicted_and_measured(run: Run) -> None:
    result = run("compare", str(EXAMPLES / "bottleneck.convcost"), "--size", "14x14", "--bench",
                 "--threads", "1")
    assert result.exit_code == 0, result.stderr
    words = " ".join(result.stdout.split())
    assert "speedup over direct: predicted 3.76x (from MACs), measured" in words
    document = json.loads(run("compare", str(EXAMPLES / "bottleneck.convcost"), "--size",
                              "14x14", "--bench", "--format", "json").stdout)
    entry = document["comparison"]["models"][1]
    assert entry["predicted_speedup"] == pytest.approx(64 / 17 * 1) or \
        entry["predicted_speedup"] == pytest.approx(1048576 / 278528)
    assert entry["measured_speedup"] > 1


def test_oversized_model_is_refused_and_others_still_measured(run: Run) -> None:
    result = run("analyze", "8x8x4 -> 1x1(4)", "2048x2048x64 -> 3x3(64)", "--bench",
                 "--max-memory", "64MB", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert "bench" in document["models"][0] and "bench" not in document["models"][1]
    message = document["errors"][0]["message"]
    assert message.startswith("benchmark of '2048x2048x64 -> 3x3(64)' refused: benchmark needs "
                              "an estimated ")
    assert "above the limit of 61.0 MiB" in message


def test_calibrate_json(run: Run, validate: Callable[[Any], None]) -> None:
    result = run("calibrate", "--quick", "--dtype", "float32", "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    validate(document)
    assert document["calibration"]["gemm_peak_gflops"]["float32"] > 0
    assert document["calibration"]["memory_bandwidth_gbs"] > 0


def test_ctrl_c_stops_cleanly_with_130() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "convcost", "analyze", str(EXAMPLES / "resnet50.convcost"),
         "--bench", "--batch", "16"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    time.sleep(3.5)  # well past start-up: the benchmark itself is running
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "convcost: interrupted" in stderr


def test_table_names_the_benchmark_machine(run: Run) -> None:
    result = run("analyze", "8x8x4 -> 1x1(4)", "--bench", "--threads", "1")
    assert result.exit_code == 0
    words = " ".join(result.stdout.split())
    assert "BLAS thread on" in words and "float32 matrix-multiply peak" in words
    assert "measured" in words and "GFLOP/s" in words
