"""Views: --depth blocks, --top/--sort, --summary, names qualified by source, measured CSV
columns and unstable marks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from convcost import render
from convcost.analysis import analyze_text
from convcost.bench.results import LayerBench, ModelBench
from convcost.compare import compare
from convcost.cost.report import ModelReport
from convcost.errors import UsageError
from convcost.render_text import to_text
from convcost.render_views import aggregate, block_of, display_names, heaviest

ROOT = Path(__file__).resolve().parent.parent
NESTED = ("28x28x64 -> 1x1(64) -> [1x1(32) | 3x3(16) -> relu] -> res[3x3(48) -> bn | 1x1(48)]"
          " -> relu")


@pytest.mark.parametrize(("path", "depth", "block"), [
    ("1", 1, "1"), ("5.body.3", 1, "5"), ("5.add", 1, "5"), ("5.b2.slice", 1, "5"),
    ("5.body.3", 2, "5.body.3"), ("5.add", 2, "5.add"), ("5.b2.4.b1.2.body.1", 2, "5.b2.4"),
    ("5.b2.4.b1.2.body.1", 3, "5.b2.4.b1.2"), ("7.gate.2", 1, "7"),
])
def test_block_of(path: str, depth: int, block: str) -> None:
    assert block_of(path, depth) == block


def test_depth_one_sums_blocks_and_keeps_totals() -> None:
    model = analyze_text(NESTED).reports[0]
    shown = aggregate(model, 1)
    assert [layer.path for layer in shown.layers] == ["1", "2", "3", "4"]
    branches, residual = shown.layers[1], shown.layers[2]
    assert branches.text == "branches (4 layers)" and str(branches.output) == "28x28x48"
    assert residual.text == "residual (4 layers)"
    for field in ("macs", "params", "other_ops", "buffers", "param_bytes", "traffic_bytes"):
        assert sum(getattr(layer, field) for layer in shown.layers) == \
            sum(getattr(layer, field) for layer in model.layers)
    assert shown.totals == model.totals
    assert aggregate(model, 9).layers == model.layers  # deeper than the model: unchanged


def test_resnet_depth_one_has_a_row_per_position() -> None:
    model = analyze_text((ROOT / "examples" / "resnet50.convcost").read_text()).reports[0]
    assert len(model.layers) == 174
    assert len(aggregate(model, 1).layers) == 38
    text = to_text(render.analyze_grid(aggregate(model, 1)), 80)
    assert "residual (11 layers)" in text and "4.09G" in text


def test_top_and_sort() -> None:
    model = analyze_text("8x8x4 -> 3x3(8) -> relu -> 1x1(64) -> fc(10)").reports[0]
    top = heaviest(model, "macs", 2)
    assert [layer.text for layer in top.model.layers] == ["fc(10)", "1x1(64)"]
    assert top.note.startswith("2 of 4 rows, sorted by MACs; they hold")
    by_params = heaviest(model, "params", None)
    assert len(by_params.model.layers) == 4 and by_params.model.layers[0].text == "fc(10)"
    assert heaviest(model, "memory", 1).model.layers[0].text == "1x1(64)"
    with pytest.raises(UsageError):
        heaviest(model, "time", 1)


def _twice(name: str) -> list[ModelReport]:
    first = analyze_text(f"{name}: 8 -> fc(4)", source_name="a/x.convcost").reports[0]
    second = analyze_text(f"{name}: 8 -> fc(8)", source_name="b/y.convcost").reports[0]
    third = analyze_text(f"{name}: 8 -> fc(2)", source_name="c/x.convcost").reports[0]
    return [first, second, third, third._replace(line=2)]


def test_duplicate_names_are_qualified_by_source() -> None:
    models = _twice("net")
    assert display_names(models) == ["a/x.convcost:net", "b/y.convcost:net",
                                     "c/x.convcost:1:net", "c/x.convcost:2:net"]
    unique = [analyze_text("8 -> relu").reports[0]]
    assert display_names(unique) == ["8 -> relu"]
    grid = render.compare_grid(compare(models))
    assert [row[0] for row in grid.rows] == display_names(models)
    rows = list(csv.reader(io.StringIO(render.compare_csv(compare(models)))))
    assert rows[1][0] == "a/x.convcost:net"
    assert "b/y.convcost:net" in render.analyze_csv(models)


def _benched(model: ModelReport, stable: bool) -> ModelReport:
    layers = tuple(layer._replace(bench=LayerBench(1e-3, 1e-5, 2.0, 0.5, "gemm", stable))
                   for layer in model.layers)
    bench = ModelBench(2e-3, 1e-5, 5, 10, 2.0, stable, (), tuple(layer.bench for layer in layers
                                                               if layer.bench is not None))
    return model._replace(layers=layers, bench=bench)


def test_bench_csv_has_the_measured_columns() -> None:
    model = _benched(analyze_text("8x8x4 -> 3x3(8) -> relu").reports[0], True)
    rows = list(csv.DictReader(io.StringIO(render.analyze_csv([model]))))
    assert rows[0]["time_s"] == "0.001" and rows[0]["algorithm"] == "gemm"
    assert rows[0]["efficiency"] == "0.5" and rows[0]["stable"] == "True"


def test_unstable_measurements_are_marked_in_every_format() -> None:
    stable = _benched(analyze_text("a: 8x8x4 -> 3x3(8)").reports[0], True)
    shaky = _benched(analyze_text("b: 8x8x4 -> 1x1(8)").reports[0], False)
    comparison = compare([stable, shaky])
    text = to_text(render.compare_grid(comparison), 120)
    assert "?" in text and "b: measured time unstable" in text
    assert "unstable" in render.to_markdown(render.compare_grid(comparison))
    rows = list(csv.DictReader(io.StringIO(render.compare_csv(comparison))))
    assert rows[1]["stable"] == "False" and rows[1]["flags"] == "unstable"
    assert rows[0]["flags"] == "" and rows[1]["measured_speedup"] == "1.0"
    layer_text = to_text(render.analyze_grid(shaky), 150)
    assert "1.00 ms?" in layer_text and "unstable (marked ?)" in layer_text


def test_summary_grid_and_csv() -> None:
    models = analyze_text("a: 8x8x4 -> 3x3(8)\nb: 8x8x4 -> 1x1(8) -> relu").reports
    grid = render.summary_grid(models)
    assert grid.title == "2 models (batch 1, float32)"
    assert [row[0] for row in grid.rows] == ["a", "b"] and grid.rows[1][3] == 2
    rows = list(csv.DictReader(io.StringIO(render.summary_csv(models))))
    assert rows[0]["macs"] == str(models[0].totals.macs) and rows[1]["layers"] == "2"


def test_depth_sums_measured_times_and_predictions() -> None:
    from convcost.roofline.apply import apply_to_analysis, resolve_devices

    analysis = analyze_text(NESTED)
    apply_to_analysis(analysis, resolve_devices(("t4",)))
    model = _benched(analysis.reports[0], True)
    shown = aggregate(model, 1)
    block = shown.layers[2]
    assert block.bench is not None and block.bench.median_s == pytest.approx(4e-3)
    assert block.bench.algorithm == "" and block.bench.efficiency is None
    assert block.roofline[0].time_s == pytest.approx(
        sum(layer.roofline[0].time_s for layer in model.layers if layer.path.startswith("3.")))
    text = to_text(render.analyze_grid(shown), 150)
    assert "residual (4 layers)" in text and "t@t4" in text and "of the 4 rows shown memory-bound" in text
    summary = to_text(render.summary_grid([model]), 120)
    assert "t@t4" in summary and "time" in summary
