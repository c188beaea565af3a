"""Plots: the data behind each one (exact, no matplotlib needed) and the files drawn."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from convcost.analysis import Analyzed, analyze_text
from convcost.plots import data
from convcost.roofline.devices import resolve_device
from convcost.roofline.predict import ridge_point

# The tests that draw share one worker: importing matplotlib takes most of a second.
pytestmark = pytest.mark.xdist_group("matplotlib")

SEED = "56x56x256 -> 1x1(64) -> bn -> relu -> 4x4(64) -> relu -> id -> gap -> fc(10)"


def _model(text: str = SEED, **options: object) -> Analyzed:
    from convcost.analysis import Options

    return analyze_text(text, Options(**options)).models[0]  # type: ignore[arg-type]


def test_roofline_points_sit_on_the_roof() -> None:
    t4 = resolve_device("t4")
    plot = data.roofline(_model(), t4)
    report = _model().report
    # id moves nothing and does nothing: it cannot sit on log axes, and is counted instead.
    assert plot.skipped == 1 and len(plot.points) == len(report.layers) - 1
    assert plot.ridge == ridge_point(t4, "float32")
    for point in plot.points:
        roof = min(plot.peak, plot.bandwidth * point.intensity)
        assert point.attained == pytest.approx(roof)
        assert point.bound == ("compute" if point.intensity >= plot.ridge else "memory")
    conv = next(p for p in plot.points if "4x4" in p.label)
    layer = next(layer for layer in report.layers if "4x4" in layer.text)
    assert (conv.ops, conv.bytes) == (2 * layer.macs + layer.other_ops, layer.traffic_bytes)
    slowest = max(range(len(plot.points)), key=lambda i: plot.points[i].time_s)
    assert slowest in plot.labelled and len(plot.labelled) == data.LABELLED
    assert plot.title == "56x56x256 -> 1x1(64) -> bn -> relu -> 4x4(64) -> relu -> id -> " \
                         "gap -> fc(10) on NVIDIA T4 (float32, batch 1)"


def test_memory_peak_is_the_reports_peak_at_every_batch_and_dtype() -> None:
    for batch, dtype in ((1, "float32"), (4, "float16")):
        model = _model("inc: 28x28x192 -> [1x1(64) | 3x3(128) | maxpool3x3(s=1) -> "
                       "1x1(32)] -> relu", batch=batch, dtype=dtype)
        plot = data.memory(model)
        assert plot.peak_bytes == model.report.totals.peak_activation_bytes
        assert len(plot.live_bytes) == len(model.report.layers)
        assert max(plot.input_bytes, *plot.live_bytes) == plot.peak_bytes
        assert plot.live_bytes[plot.peak_step - 1] == plot.peak_bytes
        assert plot.peak_label.startswith(model.program.steps[plot.peak_step - 1].path)
        assert plot.input_bytes == 28 * 28 * 192 * batch * (4 if dtype == "float32" else 2)


def test_layers_carry_macs_and_optional_times() -> None:
    model = _model()
    bare = data.layers(model)
    assert bare.macs == tuple(layer.macs for layer in model.report.layers)
    assert bare.times_s is None and "(float32, batch 1)" in bare.title
    timed = data.layers(model, resolve_device("h100-sxm"))
    assert timed.times_s is not None and len(timed.times_s) == len(bare.macs)
    assert "H100" in timed.title


def _magic(path: Path) -> bytes:
    return path.read_bytes()[:8]


# Every plot and every format, each drawn once (drawing dominates the suite's plot time).
@pytest.mark.parametrize("command, extra, suffix", [
    ("roofline", ["--device", "t4"], ".png"), ("memory", [], ".svg"),
    ("layers", ["--device", "l4"], ".pdf"), ("layers", [], ".png"),
    ("roofline", ["--device", "h100-sxm"], ".svg"),
    ("memory", [], ".pdf")])
def test_every_plot_writes_its_format(run: Callable[..., Result], tmp_path: Path,
                                      command: str, extra: list[str], suffix: str) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / f"out{suffix}"
    result = run("plot", command, SEED, *extra, "-o", str(target))
    assert result.exit_code == 0, result.output
    content = target.read_bytes()
    assert len(content) > 5_000
    if suffix == ".png":
        assert content.startswith(b"\x89PNG\r\n\x1a\n")
    elif suffix == ".svg":
        assert b"<svg" in content[:1000] and b"batch 1" in content
    else:
        assert content.startswith(b"%PDF")


def test_several_models_get_one_file_each(run: Callable[..., Result], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spec = tmp_path / "two.convcost"
    spec.write_text("a: 8x8x3 -> 3x3(4)\nc: 8x8x3 -> 1x1(4)\n")
    result = run("plot", "memory", str(spec), "-o", str(tmp_path / "m.png"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("m-*.png")) == ["m-a.png", "m-c.png"]


@pytest.mark.parametrize("arguments, message", [
    (["roofline", SEED, "-o", "x.png"], "needs exactly one --device"),
    (["roofline", SEED, "--device", "t4", "--device", "l4", "-o", "x.png"], "exactly one"),
    (["memory", SEED, "-o", "x.jpg"], "end the file name with .png, .svg, .pdf"),
    (["layers", SEED, "--device", "t4", "--device", "l4", "-o", "x.png"], "at most one"),
])
def test_usage_errors(run: Callable[..., Result], arguments: list[str], message: str) -> None:
    result = run("plot", *arguments)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_matplotlib_names_the_extra(run: Callable[..., Result],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("plot", "memory", SEED, "-o", "x.png")
    assert result.exit_code == 2
    assert "pip install 'convcost[plot]'" in result.output


def test_bad_spec_is_a_located_error_and_other_models_still_drawn(
        run: Callable[..., Result], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = run("plot", "memory", SEED, "8x8x3 -> nope", "-o", str(tmp_path / "m.svg"))
    assert result.exit_code == 2
    assert "<arg>:1:" in result.output and "^" in result.output
    assert (tmp_path / "m.svg").exists()


def test_unwritable_output_is_a_located_error_exit_2(run: Callable[..., Result],
                                                     tmp_path: Path) -> None:
    """A file that cannot be written is bad input (exit 2, not click's 1), named with the
    OS's reason, and the other models' files are still drawn."""
    pytest.importorskip("matplotlib")
    spec = tmp_path / "two.convcost"
    spec.write_text("a: 8x8x3 -> 3x3(4)\nc: 8x8x3 -> 1x1(4)\n")
    (tmp_path / "m-a.png").mkdir()  # a directory where model a's file should go
    result = run("plot", "memory", str(spec), "-o", str(tmp_path / "m.png"))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'm-a.png'}: error: cannot write:" in result.output
    assert (tmp_path / "m-c.png").is_file()
    result = run("plot", "memory", SEED, "-o", str(tmp_path / "missing" / "m.png"))
    assert result.exit_code == 2 and "No such file or directory" in result.output


def test_layers_of_a_deep_model_are_one_artist_not_a_bar_each() -> None:
    """100,000 layers drew 100,000 bar patches (minutes, over a GB): beyond MAX_BARS the
    bars are one filled step outline, with the same heights."""
    pytest.importorskip("matplotlib")
    from convcost.plots import draw

    count = draw.MAX_BARS + 1
    plot = data.LayersPlot("deep", tuple(f"{i} 3x3(4)" for i in range(count)),
                           tuple(range(count)), tuple(float(i) for i in range(count)))
    figure = draw.layers_figure(plot)
    try:
        from matplotlib.patches import StepPatch

        for panel in figure.axes:
            assert len(panel.patches) == 1
            outline = panel.patches[0]
            assert isinstance(outline, StepPatch)
            assert list(outline.get_data()[0]) == list(range(count))  # (values, edges, baseline)
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)
    small = draw.layers_figure(data.layers(_model()))
    try:
        assert len(small.axes[0].patches) == len(_model().report.layers)
    finally:
        plt.close(small)
