"""What watches ``--bench`` (convcost.bench.run's Monitor): GEMM probes around the timed
blocks, efficiencies only where they agree, contention flags, the address-space limit, and the
CLI's bench options. Every time, probe and CPU reading is injected: nothing here depends on
how fast or how loaded the machine is."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from convcost.analysis import Analyzed, Options, analyze_text
from convcost.bench import machine
from convcost.bench.contention import CpuTimes
from convcost.bench.results import (
    BEATS_GEMM,
    PROBE_UNRELIABLE,
    TIMING_UNSTABLE,
    LayerBench,
    ModelBench,
    classify_efficiency,
)
from convcost.bench.run import (
    MAX_PEAK_PER_PROBE,
    UNWATCHED,
    BenchSettings,
    Monitor,
    bench_models,
    make_monitor,
)
from convcost.bench.timing import (
    TimingPolicy,
    agree_mostly,
    measure,
    probe_agreement,
    probes_agree,
)
from convcost.compare import compare
from convcost.cost.report import document
from convcost.errors import BenchRefused

PEAK = 100.0
SETTINGS = BenchSettings(gemm_peak_gflops=PEAK, max_memory=2**30)
CHAIN = "16x16x8 -> 3x3(16) -> relu"


def ticking(tick: float = 0.125) -> Callable[[], float]:
    """A clock that advances ``tick`` seconds per reading."""
    counter = itertools.count(1)
    return lambda: next(counter) * tick


def _models(text: str) -> list[Analyzed]:
    return analyze_text(text, Options()).models


def _no_stat() -> CpuTimes | None:
    return None


def _probe(readings: list[float]) -> Callable[[], float]:
    """A probe returning ``readings`` in turn, cycling."""
    values: Iterator[float] = itertools.cycle(readings)
    return lambda: next(values)


def _watched(probe: Callable[[], float] | None, **kwargs: Any) -> Monitor:
    fields: dict[str, Any] = {"probe": probe, "peak_per_probe": 2.0, "cpu_clock": None,
                              "stat": _no_stat, "threads": 1, "cpus": 2}
    return Monitor(**{**fields, **kwargs})


def _conv(run_models: list[Analyzed]) -> tuple[ModelBench, LayerBench]:
    report = run_models[0].report
    assert report.bench is not None and report.layers[0].bench is not None
    return report.bench, report.layers[0].bench


# --- timing: probes and CPU time around every timed block ------------------------------------


def test_measure_probes_before_and_after_every_timed_block() -> None:
    policy = TimingPolicy(warmup=0, min_block_s=0.1, repeats=5)
    readings = iter(range(1, 100))
    found = measure(lambda: None, policy, ticking(), cpu_clock=ticking(0.0625),
                    probe=lambda: float(next(readings)))
    assert found.probes == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # repeats + 1 readings
    assert found.cpu_s == (0.0625,) * 5 and found.block_s == (0.125,) * 5
    assert found.median_s == 0.125  # the probes are not timed


def test_measure_without_probe_or_cpu_clock_records_neither() -> None:
    found = measure(lambda: None, TimingPolicy(warmup=0, min_block_s=0.1), ticking())
    assert found.probes == () and found.cpu_s == () and found.probes_agree


def test_probes_agree_within_ten_percent() -> None:
    assert probes_agree(100.0, 90.0) and probes_agree(90.0, 100.0)
    assert not probes_agree(100.0, 89.0) and not probes_agree(0.0, 0.0)
    assert probe_agreement([100.0, 95.0, 50.0, 52.0]) == [True, False, True]
    assert agree_mostly([True, False, True]) and not agree_mostly([True, False])
    assert agree_mostly([])


@pytest.mark.parametrize(("efficiency", "agree", "stable", "expected"), [
    (0.8, True, True, (0.8, "")),
    (0.8, True, False, (0.8, "")),
    (1.3, True, True, (1.3, BEATS_GEMM)),
    (1.3, True, False, (None, TIMING_UNSTABLE)),
    (0.8, False, True, (None, PROBE_UNRELIABLE)),
    (1.3, False, True, (None, PROBE_UNRELIABLE)),
    (None, False, True, (None, "")),
])
def test_efficiency_classification(efficiency: float | None, agree: bool, stable: bool,
                                   expected: tuple[float | None, str]) -> None:
    assert classify_efficiency(efficiency, agree, stable) == expected


@pytest.mark.parametrize(("peak", "scale"), [
    (100.0, MAX_PEAK_PER_PROBE),  # a probe far below the peak: capped
    (0.5, 1.0),  # a peak below the probe: the probe is trusted
    (1.0, 1.0 / (2 * 384**3 / 0.125 / 1e9)),
])
def test_the_monitor_scales_its_probe_to_the_calibrated_peak(peak: float, scale: float) -> None:
    # Every matmul of the probe takes one tick of 0.125 s: 2 * 384^3 / 0.125 flop/s.
    monitor = make_monitor("float32", peak, 1, ticking())
    assert monitor.probe is not None and monitor.probe() == 2 * 384**3 / 0.125 / 1e9
    assert monitor.peak_per_probe == pytest.approx(scale)
    assert monitor.reference_gflops == 2 * 384**3 / 0.125 / 1e9


def test_no_peak_or_dtype_means_no_probe() -> None:
    assert make_monitor("float32", 0.0, 2).probe is None
    assert make_monitor("bfloat16", 100.0, 2).probe is None


# --- bench_models with a monitor ---------------------------------------------------------------


def test_steady_probes_give_the_efficiency_against_the_peak_they_measured() -> None:
    # Probe 25 GFLOP/s x 2 peak per probe: a local peak of 50 GFLOP/s.
    run = bench_models(_models(CHAIN), SETTINGS, clock=ticking(),
                       monitor=_watched(_probe([25.0])))
    bench, conv = _conv(list(run.models))
    assert conv.efficiency == pytest.approx(conv.gflops / 50.0) and conv.efficiency_flag == ""
    assert bench.probes_agree and bench.reliable and not bench.contended
    relu = run.models[0].report.layers[1].bench
    assert relu is not None and relu.efficiency is None and relu.efficiency_flag == ""


def test_disagreeing_probes_withhold_every_efficiency_and_flag_the_run() -> None:
    run = bench_models(_models(CHAIN), SETTINGS, clock=ticking(),
                       monitor=_watched(_probe([25.0, 50.0])))
    bench, conv = _conv(list(run.models))
    assert conv.efficiency is None and conv.efficiency_flag == PROBE_UNRELIABLE
    assert not conv.stable
    assert not bench.probes_agree and not bench.reliable
    assert any(note.startswith("unsteady: the GEMM probes") for note in bench.warnings)


def test_above_the_peak_with_steady_probes_is_beats_gemm_never_a_plain_number() -> None:
    run = bench_models(_models(CHAIN), SETTINGS, clock=ticking(),
                       monitor=_watched(_probe([1e-6])))
    _, conv = _conv(list(run.models))
    assert conv.efficiency is not None and conv.efficiency > 1.0
    assert conv.efficiency_flag == BEATS_GEMM and conv.stable


def test_a_cpu_starved_run_is_contended_in_every_field(validate: Callable[[Any], None]) -> None:
    # Each reading of the CPU clock advances far less than the wall clock: descheduled.
    run = bench_models(_models(CHAIN), SETTINGS, clock=ticking(),
                       monitor=_watched(_probe([25.0]), cpu_clock=ticking(0.01)))
    bench, _ = _conv(list(run.models))
    assert bench.contended and not bench.reliable
    assert bench.cpu_share is not None and bench.cpu_share < 0.5
    assert any(note.startswith("contended:") for note in bench.warnings)
    data = bench.to_json()
    assert (data["contended"], data["reliable"]) == (True, False)
    validate(document([model.report for model in run.models], [], **run.to_json()))


def test_others_on_the_cores_are_contended_with_the_threads_advice() -> None:
    readings = itertools.count()

    def stat() -> CpuTimes:  # 1.5 of the 2 CPUs busy, little of it ours
        n = next(readings)
        return CpuTimes(busy=1500 * n, total=2000 * n, cpus=2)

    monitor = _watched(_probe([25.0]), cpu_clock=ticking(0.125), stat=stat, threads=2)
    run = bench_models(_models(CHAIN), SETTINGS, clock=ticking(), monitor=monitor)
    bench, _ = _conv(list(run.models))
    assert bench.contended
    assert bench.others_cores is not None and 0.5 < bench.others_cores < 1.25
    assert any("--threads 1" in note for note in bench.warnings)


def test_compare_marks_a_measured_speedup_from_an_unreliable_timing(
        validate: Callable[[Any], None]) -> None:
    models = _models("a: 16x16x8 -> 3x3(16)\nb: 16x16x8 -> 1x1(4) -> 3x3(16)")
    quiet = bench_models(models, SETTINGS, clock=ticking(), monitor=UNWATCHED)
    comparison = compare([model.report for model in quiet.models])
    assert comparison.measured_reliable(comparison.models[1])
    assert comparison.to_json()["models"][1]["measured_reliable"] is True
    shaky = bench_models(models[:1], SETTINGS, clock=ticking(),
                         monitor=_watched(_probe([25.0, 50.0])))
    mixed = compare([shaky.models[0].report, quiet.models[1].report])
    assert not mixed.measured_reliable(mixed.models[1])
    entry = mixed.to_json()["models"][1]
    assert entry["measured_reliable"] is False and entry["measured_speedup"] > 0
    validate(document(list(mixed.models), [], comparison=mixed.to_json()))
    # The table marks the ratio and the note says whose timing was unreliable, and why.
    from convcost.render import compare_grid

    grid = compare_grid(mixed)
    assert str(grid.rows[1][-1]).endswith(" ?")
    assert any("(UNRELIABLE: a: UNSTEADY)" in note for note in grid.notes)
    assert not any("UNRELIABLE" in note for note in compare_grid(comparison).notes)


# --- the address-space limit -------------------------------------------------------------------


def test_address_space_headroom_is_the_limit_minus_what_is_mapped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmSize:\t  102400 kB\n", encoding="ascii")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (300 * 2**20, resource.RLIM_INFINITY))
    assert machine.address_space_headroom(str(status)) == 200 * 2**20
    monkeypatch.setattr(resource, "getrlimit", lambda _: (2**20, resource.RLIM_INFINITY))
    assert machine.address_space_headroom(str(status)) == 0
    monkeypatch.setattr(resource, "getrlimit",
                        lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert machine.address_space_headroom(str(status)) is None


def test_an_address_space_limit_refuses_the_models_above_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # What is left beyond the reserve kept for BLAS's own buffer: a megabyte.
    monkeypatch.setattr("convcost.bench.run.address_space_headroom",
                        lambda: machine.BLAS_RESERVE_BYTES + 10**6)
    models = _models("small: 8x8x4 -> 1x1(4)\nbig: 4096 -> fc(4096)\nalso: 8x8x4 -> relu")
    run = bench_models(models, SETTINGS, clock=ticking())
    assert [model.report.bench is not None for model in run.models] == [True, False, True]
    (error,) = run.errors
    assert isinstance(error, BenchRefused) and error.line == 2
    assert "(what the address-space limit, ulimit -v, leaves)" in error.message


def test_too_little_address_space_skips_the_peak_and_refuses_with_a_note(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("convcost.bench.run.address_space_headroom", lambda: 2**20)
    run = bench_models(_models("8x8x4 -> 1x1(4)"), BenchSettings(max_memory=2**30),
                       clock=ticking())
    assert run.machine.gemm_peak_gflops == 0.0
    assert any("address-space limit (ulimit -v) leaves 1.00 MiB" in note
               for note in run.warnings)
    (error,) = run.errors
    assert isinstance(error, BenchRefused) and "ulimit -v" in error.message


def test_running_out_of_memory_while_calibrating_is_a_note(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_: Any) -> float:
        raise MemoryError

    monkeypatch.setattr("convcost.bench.run.gemm_peak_gflops", exhausted)
    run = bench_models(_models("8x8x4 -> relu"), BenchSettings(max_memory=2**30),
                       clock=ticking())
    assert run.machine.gemm_peak_gflops == 0.0 and run.errors == ()
    assert any("out of memory while measuring" in note for note in run.warnings)


def test_float16_counts_the_float32_draw_of_its_weights() -> None:
    from convcost.bench.executor import estimate

    program = _models("4096 -> fc(8192)")[0].program
    half, single = estimate(program, 1, "float16"), estimate(program, 1, "float32")
    assert half.weights * 2 == single.weights
    # Drawn in float32 (4 bytes an element) while the float16 copy is made.
    assert half.total >= half.weights + 4096 * 8192 * 4


# --- the CLI's bench options -------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["nan", "inf", "-1", "0"])
def test_a_non_finite_or_non_positive_budget_is_a_usage_error(
        run: Callable[..., Result], budget: str) -> None:
    result = run("analyze", "8x8x4 -> relu", "--bench", "--bench-budget", budget)
    assert result.exit_code == 2
    assert "--bench-budget" in result.stderr and "Traceback" not in result.stderr


def test_huge_threads_are_capped_at_the_cpu_count_with_a_note(
        run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("convcost.bench.run.gemm_peak_gflops", lambda *_: PEAK)
    monkeypatch.setattr("convcost.bench.run.make_monitor", lambda *_: UNWATCHED)
    result = run("analyze", "8x8x4 -> relu", "--bench", "--threads", "9" * 30,
                 "--bench-budget", "0.05", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "more than 2,147,483,647 BLAS threads asked for" in result.stderr
    assert f"running {machine.cpu_count()}" in result.stderr
