"""Roofline predictions end to end: ``devices``, ``--device`` on analyze/compare/check in every
format, ``check --max-time``, ``calibrate --save`` (with a stand-in calibration), the library.

Expected times are worked out by hand for one small chain::

    8x8x64 -> 3x3(64) -> relu        (float32, batch 1)
    3x3(64): MACs 8*8*9*64*64 = 2,359,296; bias adds 8*8*64 = 4,096
             ops = 2 * 2,359,296 + 4,096 = 4,722,688
             bytes = (4,096 in + 4,096 out) * 4 + (36,864 + 64 params) * 4 = 180,480
    relu:    ops = 4,096; bytes = (4,096 + 4,096) * 4 = 32,768

on the shipped T4 (float32 8.1e12 FLOP/s, 320e9 bytes/s) and on a user file "box"
(float32 1e12 FLOP/s, 1e11 bytes/s).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import convcost
from convcost.roofline import (
    Device,
    DeviceError,
    device_to_json,
    load_device_file,
    shipped_devices,
)
from convcost.roofline.local import profile_from_calibration
from tests.conftest import EXAMPLES

Run = Callable[..., Result]
Validate = Callable[[Any], None]

CHAIN = "net: 8x8x64 -> 3x3(64) -> relu"
CONV_OPS, CONV_BYTES = 2 * 2_359_296 + 4_096, 180_480
RELU_OPS, RELU_BYTES = 4_096, 32_768
# T4: the conv is (just) compute-bound, the relu memory-bound.
T4_CONV = CONV_OPS / 8.1e12
T4_RELU = RELU_BYTES / 320e9
T4_TOTAL = T4_CONV + T4_RELU
# box: the conv compute-bound (4.72 us vs 1.80 us), the relu memory-bound.
BOX_CONV = CONV_OPS / 1e12
BOX_RELU = RELU_BYTES / 1e11
BOX_TOTAL = BOX_CONV + BOX_RELU
BOX = 'name = "Box"\nkind = "cpu"\nbandwidth = 1.0e11\n\n[peak]\nfloat32 = 1.0e12\n'
SEED = ("256 -> 4x4(256)", "256 -> 1x1(64) -> 4x4(256)")


@pytest.fixture
def box(tmp_path: Path) -> str:
    path = tmp_path / "box.toml"
    path.write_text(BOX, encoding="utf-8")
    return str(path)


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _csv(result: Result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


# -- devices ----------------------------------------------------------------------------------


def test_devices_json_lists_every_shipped_profile(run: Run, validate: Validate) -> None:
    result = run("devices", "--format", "json")
    assert result.exit_code == 0, result.output
    document = _json(result)
    validate(document)
    assert document["devices"] == [device_to_json(device) for device in shipped_devices()]
    assert len(document["devices"]) == 14
    t4 = next(entry for entry in document["devices"] if entry["id"] == "t4")
    assert set(t4) == {"id", "name", "kind", "peak", "bandwidth", "memory_bytes", "source"}
    assert t4["peak"] == {"float32": 8.1e12, "float16": 65.0e12, "int8": 130.0e12}
    assert t4["bandwidth"] == 320e9


def test_devices_table_fits_80_columns(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = run("devices")
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for device in shipped_devices():
        assert device.id in result.stdout
    assert "TFLOP/s" in result.stdout and "GB/s" in result.stdout
    assert "--verbose" in result.stdout  # where the sources are
    t4_line = next(line for line in result.stdout.splitlines() if line.startswith(" t4 "))
    assert "8.10" in t4_line and "65.0" in t4_line and "320" in t4_line


def test_devices_verbose_prints_the_sources(run: Run) -> None:
    result = run("devices", "--verbose")
    assert result.exit_code == 0
    assert "NVIDIA T4 Tensor Core GPU datasheet" in result.stdout


# -- analyze ----------------------------------------------------------------------------------


def test_analyze_json_has_hand_computed_times(run: Run, validate: Validate, box: str) -> None:
    result = run("analyze", CHAIN, "--device", "t4", "--device", box, "--format", "json")
    assert result.exit_code == 0, result.output
    document = _json(result)
    validate(document)
    model = document["models"][0]
    conv, relu = (layer["roofline"] for layer in model["layers"])
    assert [entry["device"] for entry in conv] == ["t4", "box"]
    assert conv[0]["time_s"] == pytest.approx(T4_CONV) and conv[0]["bound"] == "compute"
    assert relu[0]["time_s"] == pytest.approx(T4_RELU) and relu[0]["bound"] == "memory"
    assert conv[1]["time_s"] == pytest.approx(BOX_CONV) and conv[1]["bound"] == "compute"
    assert relu[1]["time_s"] == pytest.approx(BOX_RELU) and relu[1]["bound"] == "memory"
    t4, mine = model["roofline"]
    assert t4["name"] == "NVIDIA T4" and mine["name"] == "Box"
    assert t4["time_s"] == pytest.approx(T4_TOTAL)
    assert mine["time_s"] == pytest.approx(BOX_TOTAL)
    assert t4["attainable_flops"] == pytest.approx((CONV_OPS + RELU_OPS) / T4_TOTAL)
    assert mine["bound"] == "compute"


def test_analyze_with_batch_scales_ops_and_bytes(run: Run, box: str) -> None:
    result = run("analyze", CHAIN, "--device", box, "--batch", "4", "--format", "json")
    relu = _json(result)["models"][0]["layers"][1]["roofline"][0]
    assert relu["time_s"] == pytest.approx(4 * BOX_RELU)


def test_analyze_table_has_a_time_column_per_device(run: Run, box: str) -> None:
    result = run("analyze", CHAIN, "--device", "t4", "--device", box)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "path" in line)
    assert "t@t4" in header and "t@box" in header
    relu = next(line for line in lines if " relu " in line)
    assert "102 ns*" in relu and "328 ns*" in relu  # memory-bound, marked
    total = next(line for line in lines if " total " in line)
    assert "685 ns" in total and "5.05 us" in total
    assert any("t@t4 = NVIDIA T4: predicted 685 ns" in line for line in lines)


def test_analyze_markdown_and_csv(run: Run, box: str) -> None:
    markdown = run("analyze", CHAIN, "--device", "t4", "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| t@t4 |" in markdown.stdout and "**685 ns**" in markdown.stdout
    rows = _csv(run("analyze", CHAIN, "--device", "t4", "--device", box, "--format", "csv"))
    assert float(rows[0]["time_s@t4"]) == pytest.approx(T4_CONV)
    assert rows[0]["bound@t4"] == "compute"
    assert float(rows[1]["time_s@box"]) == pytest.approx(BOX_RELU)
    assert rows[1]["bound@box"] == "memory"


def test_analyze_without_device_is_unchanged(run: Run) -> None:
    document = _json(run("analyze", CHAIN, "--format", "json"))
    assert "roofline" not in document["models"][0]
    assert "roofline" not in document["models"][0]["layers"][0]
    assert "time_s" not in _csv(run("analyze", CHAIN, "--format", "csv"))[0]


# -- errors -----------------------------------------------------------------------------------


def test_a_dtype_the_device_lacks_is_an_error(run: Run) -> None:
    result = run("analyze", CHAIN, "--device", "t4", "--dtype", "bfloat16")
    assert result.exit_code == 2
    assert "device 't4' (NVIDIA T4) has no bfloat16 peak; its dtypes: float32, float16, " \
           "int8" in result.stderr
    assert result.stdout == ""


def test_unknown_device_suggests_the_close_ids(run: Run) -> None:
    result = run("compare", *SEED, "--device", "h100")
    assert result.exit_code == 2
    assert "unknown device 'h100'; did you mean 'h100-sxm'" in result.stderr
    assert result.stdout == ""


def test_unreadable_device_file(run: Run, tmp_path: Path) -> None:
    result = run("analyze", CHAIN, "--device", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "cannot read device file" in result.stderr


def test_two_devices_with_one_id_are_refused(run: Run, tmp_path: Path, box: str) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "box.toml").write_text(BOX.replace("1.0e11", "2.0e11"), encoding="utf-8")
    result = run("analyze", CHAIN, "--device", box, "--device", str(other / "box.toml"))
    assert result.exit_code == 2
    assert "two different devices have the id 'box'" in result.stderr
    # The same device twice is only predicted once.
    once = _json(run("analyze", CHAIN, "--device", "t4", "--device", "T4", "--format", "json"))
    assert len(once["models"][0]["roofline"]) == 1


# -- compare ----------------------------------------------------------------------------------


def test_compare_json_has_roofline_speedups(run: Run, validate: Validate, box: str) -> None:
    result = run("compare", "a: 8x8x64 -> 3x3(64) -> relu", "b: 8x8x64 -> relu",
                 "--device", "t4", "--device", box, "--format", "json")
    assert result.exit_code == 0, result.output
    document = _json(result)
    validate(document)
    entries = document["comparison"]["models"]
    assert entries[0]["roofline_speedup"] == {"t4": 1.0, "box": 1.0}
    # b is the relu alone.
    assert entries[1]["roofline_speedup"]["t4"] == pytest.approx(T4_TOTAL / T4_RELU)
    assert entries[1]["roofline_speedup"]["box"] == pytest.approx(BOX_TOTAL / BOX_RELU)
    assert entries[1]["predicted_speedup"] is None  # no MACs: no MAC ratio


def test_compare_zero_time_is_null_not_infinity(run: Run, validate: Validate) -> None:
    result = run("compare", "a: 8 -> 1x1(8)", "b: 8 -> id", "--device", "t4", "--format",
                 "json")
    assert result.exit_code == 0
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout
    document = _json(result)
    validate(document)
    assert document["comparison"]["models"][1]["roofline_speedup"] == {"t4": None}
    assert document["models"][1]["roofline"][0]["attainable_flops"] is None
    reverse = run("compare", "b: 8 -> id", "a: 8 -> 1x1(8)", "--device", "t4", "--format",
                  "json")
    validate(_json(reverse))
    assert _json(reverse)["comparison"]["models"][1]["roofline_speedup"] == {"t4": None}
    assert run("compare", "b: 8 -> id", "a: 8 -> 1x1(8)", "--device", "t4").exit_code == 0


def test_compare_table_fits_80_columns(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = run("compare", str(EXAMPLES / "bottleneck.convcost"), "--size", "56x56",
                 "--device", "t4", "--device", "h100-sxm", "--device", "xeon-8480")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "MAC speedup" in line)
    assert "t@t4" in header and "t@h100-sxm" in header and "t@xeon-8480" in header
    row = lines[lines.index(header) + 3]  # header, rule, baseline, then the bottleneck
    assert row.startswith(" bottleneck")
    assert row.count("3.76x") == 4  # MACs, then t4, h100 and xeon (all compute-bound)
    assert "bottleneck vs direct: 3.76x by MACs; predicted 3.76x on t4" in result.stdout


def test_compare_markdown_and_csv(run: Run, box: str) -> None:
    markdown = run("compare", *SEED, "--device", box, "--format", "markdown")
    assert markdown.exit_code == 0
    assert "| t@box |" in markdown.stdout
    rows = _csv(run("compare", "a: 8x8x64 -> 3x3(64) -> relu", "b: 8x8x64 -> relu",
                    "--device", box, "--format", "csv"))
    assert float(rows[0]["time_s@box"]) == pytest.approx(BOX_TOTAL)
    assert float(rows[1]["roofline_speedup@box"]) == pytest.approx(BOX_TOTAL / BOX_RELU,
                                                                   rel=1e-5)


# -- check ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "github"])
def test_max_time_passes_and_fails(run: Run, validate: Validate, box: str, fmt: str) -> None:
    passing = run("check", CHAIN, "--max-time", "t4=1us", "--format", fmt)
    assert passing.exit_code == 0, passing.output
    failing = run("check", CHAIN, "--max-time", "t4=0.0000005", "--max-time", f"{box}=1ms",
                  "--format", fmt)
    assert failing.exit_code == 1, failing.output
    if fmt == "json":
        document = _json(failing)
        validate(document)
        validate(_json(passing))
        results = {r["metric"]: r for r in document["check"]["results"]}
        assert results["time@t4"]["now"] == pytest.approx(T4_TOTAL)
        assert results["time@t4"]["limit"] == 5e-7 and not results["time@t4"]["passed"]
        assert results["time@box"]["passed"]
        assert document["models"][0]["roofline"][0]["device"] == "t4"
    else:
        assert "predicted time on NVIDIA T4 685 ns over the budget of 500 ns" in failing.stdout
    if fmt == "table":
        assert "time on t4" in failing.stdout


def test_max_time_with_device_and_other_budgets(run: Run, validate: Validate) -> None:
    result = run("check", CHAIN, "--device", "h100-sxm", "--max-macs", "1G",
                 "--max-time", "t4=1ms", "--format", "json")
    assert result.exit_code == 0
    document = _json(result)
    validate(document)
    assert [r["metric"] for r in document["check"]["results"]] == ["macs", "time@t4"]
    assert [t["device"] for t in document["models"][0]["roofline"]] == ["h100-sxm", "t4"]


@pytest.mark.parametrize("spelling", ["t4", "t4=", "=1ms", "t4=fast", "t4=0", "t4=-1",
                                      "t4=inf", "t4=nan", "t44=1ms"])
def test_max_time_bad_spellings_are_usage_errors(run: Run, spelling: str) -> None:
    result = run("check", CHAIN, "--max-time", spelling)
    assert result.exit_code == 2
    assert "--max-time" in result.stderr


def test_max_time_device_lacking_the_dtype(run: Run) -> None:
    result = run("check", CHAIN, "--max-time", "t4=1ms", "--dtype", "float64")
    assert result.exit_code == 2
    assert "has no float64 peak" in result.stderr


# -- calibrate --save -------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeMachine:
    blas: str = "openblas 0.3.99"
    blas_arch: str = "Haswell"
    threads: int = 4
    cpu_count: int = 4


@dataclass(frozen=True)
class FakeCalibration:
    machine: FakeMachine = FakeMachine()
    gemm_peak_gflops: dict[str, float] = field(
        default_factory=lambda: {"float32": 100.0, "float64": 50.0})
    memory_bandwidth_gbs: float = 20.0
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"machine": {"blas": self.machine.blas, "blas_arch": self.machine.blas_arch,
                            "threads": self.machine.threads,
                            "cpu_count": self.machine.cpu_count,
                            "gemm_peak_gflops": self.gemm_peak_gflops["float32"]},
                "calibration": {"gemm_peak_gflops": self.gemm_peak_gflops,
                                "memory_bandwidth_gbs": self.memory_bandwidth_gbs}}


@pytest.fixture
def fake_calibration(monkeypatch: pytest.MonkeyPatch) -> FakeCalibration:
    """Stand in for convcost.bench.machine: never measure for real in tests."""
    import contextlib

    import convcost.bench

    result = FakeCalibration()
    fake = types.ModuleType("convcost.bench.machine")
    fake.calibrate = lambda dtypes, quick=False: result  # type: ignore[attr-defined]
    fake.blas_threads = lambda threads: contextlib.nullcontext()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "convcost.bench.machine", fake)
    monkeypatch.setattr(convcost.bench, "machine", fake, raising=False)
    return result


def test_calibrate_save_writes_the_local_profile(run: Run, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 fake_calibration: FakeCalibration) -> None:
    profile = tmp_path / "config" / "convcost" / "local.toml"
    monkeypatch.setenv("CONVCOST_LOCAL_PROFILE", str(profile))
    result = run("calibrate", "--save")
    assert result.exit_code == 0, result.output
    assert f"saved this machine's profile to {profile}" in result.stderr
    assert "--device local" in result.stderr
    device = load_device_file(profile, "local")
    assert device.peak == {"float32": 100e9, "float64": 50e9}
    assert device.bandwidth == 20e9 and device.kind == "cpu"
    assert device.name == "this machine (openblas 0.3.99 Haswell, 4 threads)"
    assert device.source.startswith("convcost calibrate on ")
    # ... and --device local predicts with it.
    predicted = _json(run("analyze", CHAIN, "--device", "local", "--format", "json"))
    conv = predicted["models"][0]["layers"][0]["roofline"][0]
    assert conv["device"] == "local"
    assert conv["time_s"] == pytest.approx(CONV_OPS / 100e9)


def test_calibrate_save_to_a_file_with_json(run: Run, tmp_path: Path, validate: Validate,
                                            fake_calibration: FakeCalibration) -> None:
    target = tmp_path / "new" / "mine.toml"
    result = run("calibrate", "--format", "json", "--save", str(target))
    assert result.exit_code == 0, result.output
    validate(_json(result))
    assert f"--device {target}" in result.stderr
    assert load_device_file(target).bandwidth == 20e9


def test_local_without_a_profile(run: Run, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVCOST_LOCAL_PROFILE", str(tmp_path / "none.toml"))
    result = run("analyze", CHAIN, "--device", "local")
    assert result.exit_code == 2
    assert "convcost calibrate --save" in result.stderr


def test_profile_from_calibration_is_pure() -> None:
    calibration = FakeCalibration(gemm_peak_gflops={"float32": 2.5, "float64": float("nan")})
    device = profile_from_calibration(calibration, datetime.date(2026, 1, 2))
    assert device == Device(id="local", name="this machine (openblas 0.3.99 Haswell, "
                            "4 threads)", kind="cpu", peak={"float32": 2.5e9},
                            bandwidth=20e9, memory_bytes=None,
                            source="convcost calibrate on 2026-01-02")
    with pytest.raises(DeviceError, match="no usable matrix-multiply peak"):
        profile_from_calibration(FakeCalibration(gemm_peak_gflops={"float32": 0.0}))


def test_calibrate_save_refuses_an_unusable_measurement(
        run: Run, tmp_path: Path, fake_calibration: FakeCalibration,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import convcost.bench

    broken = FakeCalibration(memory_bandwidth_gbs=0.0)
    monkeypatch.setattr(convcost.bench.machine, "calibrate",  # type: ignore[attr-defined]
                        lambda dtypes, quick=False: broken)
    result = run("calibrate", "--save", str(tmp_path / "x.toml"))
    assert result.exit_code == 2
    assert "cannot save the profile: bandwidth must be a positive" in result.stderr
    assert not (tmp_path / "x.toml").exists()


# -- the library ------------------------------------------------------------------------------


def test_library_analyze_takes_devices(box: str) -> None:
    by_id = convcost.analyze(CHAIN, devices=["t4", Path(box)]).reports[0]
    assert [time.device for time in by_id.roofline] == ["t4", "box"]
    assert by_id.roofline[0].time_s == pytest.approx(T4_TOTAL)
    assert by_id.layers[1].roofline[1].bound == "memory"
    t4 = next(device for device in shipped_devices() if device.id == "t4")
    assert convcost.analyze(CHAIN, devices=[t4]).reports[0].roofline[0] == by_id.roofline[0]
    with pytest.raises(DeviceError, match="has no float64 peak"):
        convcost.analyze(CHAIN, dtype="float64", devices=["t4"])
    with pytest.raises(ValueError, match="unknown device"):
        convcost.analyze(CHAIN, devices=["nope"])


def test_help_documents_the_options(run: Run) -> None:
    for command in ("analyze", "compare", "check"):
        assert "--device ID|FILE" in run(command, "--help").stdout
    assert "--max-time DEVICE=SECONDS" in run("check", "--help").stdout
    assert "--save [FILE]" in run("calibrate", "--help").stdout
    assert "devices" in run("--help").stdout


@dataclass(frozen=True)
class _Measured:
    """Stands in for a ModelBench: the comparison reads only the median."""

    median_s: float


def test_compare_grid_with_bench_shows_the_measured_speedup_too() -> None:
    from convcost.compare import compare
    from convcost.render import to_markdown
    from convcost.roofline.tables import compare_grid

    reports = convcost.analyze(*SEED, devices=["t4"]).reports
    measured = [reports[0]._replace(bench=_Measured(0.004)),  # type: ignore[arg-type]
                reports[1]._replace(bench=_Measured(0.001))]  # type: ignore[arg-type]
    grid = compare_grid(compare(measured))
    assert grid is not None
    text = to_markdown(grid)
    assert "| model | MAC speedup | t@t4 | measured |" in text
    assert "| 4.00 ms  base |" in text and "| 1.00 ms 4.00x |" in text
    assert "3.76x by MACs; predicted 3.75x on t4; measured 4.00x" in text


def test_calibrate_save_to_an_unwritable_place(run: Run, tmp_path: Path,
                                               fake_calibration: FakeCalibration) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = run("calibrate", "--save", str(blocker / "sub" / "local.toml"))
    assert result.exit_code == 2
    assert "cannot save the profile: cannot write" in result.stderr


def test_predicted_against_measured_on_local(box: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             validate: Validate) -> None:
    """With --bench on 'local', layers and the model carry predicted / measured - 1; other
    devices never do (their time is not comparable with this machine's)."""
    from convcost.bench.results import LayerBench, ModelBench
    from convcost.cost.report import document_text
    from convcost.render import analyze_grid, to_markdown
    from convcost.roofline.apply import with_roofline

    local = tmp_path / "local.toml"
    local.write_text(BOX, encoding="utf-8")
    monkeypatch.setenv("CONVCOST_LOCAL_PROFILE", str(local))
    report = convcost.analyze(CHAIN).reports[0]
    layers = (LayerBench(BOX_CONV * 2, 0.0, 1.0, 0.5, "gemm"),
              LayerBench(BOX_RELU / 2, 0.0, 0.0, None, "direct"))
    bench = ModelBench(BOX_TOTAL * 4, 0.0, 5, 1, 1.0, True, (), layers)
    measured = report._replace(bench=bench, layers=tuple(
        layer._replace(bench=timing) for layer, timing in zip(report.layers, layers)))
    predicted = with_roofline(measured, convcost.roofline.resolve_devices(["local", "t4"]))
    conv, relu = predicted.layers
    assert conv.roofline[0].error == pytest.approx(-0.5)
    assert relu.roofline[0].error == pytest.approx(1.0)
    assert predicted.roofline[0].error == pytest.approx(-0.75)
    assert all(time.error is None for time in (conv.roofline[1], predicted.roofline[1]))
    document = json.loads(document_text([predicted], []))
    validate(document)
    assert document["models"][0]["roofline"][0]["error"] == pytest.approx(-0.75)
    assert "error" not in document["models"][0]["layers"][0]["roofline"][1]
    text = to_markdown(analyze_grid(predicted))
    assert "| t@local | err@local | t@t4 |" in text
    assert "-50.00%" in text and "+100.00%" in text and "-75% against the measured" in text
