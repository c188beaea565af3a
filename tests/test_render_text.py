"""Plain-text tables fitted to a width: priorities, dropped-column notes, whole titles, no
trailing spaces, numbers and units never cropped (at 60, 80, 100 and 150 columns)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convcost import render
from convcost.analysis import analyze_text
from convcost.compare import compare
from convcost.render_text import ASCII, to_text

ROOT = Path(__file__).resolve().parent.parent
RESNET = analyze_text((ROOT / "examples" / "resnet50.convcost").read_text()).reports[0]
LONG_CHAIN = ("56x56x64 -> 3x3(64, s=1, nobias) -> bn -> relu -> 3x3(64, s=1, nobias) -> bn "
              "-> relu -> maxpool2x2 -> 1x1(128) -> bn")
NUMBER = re.compile(r"\d[\d.,]*[KMG]?(?: (?:B|KiB|MiB|GiB))?")


@pytest.mark.parametrize("width", [60, 80, 100, 150])
def test_resnet_table_fits_without_cropping(width: int) -> None:
    text = to_text(render.analyze_grid(RESNET), width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert all(line == line.rstrip() for line in lines)
    assert "…" not in text
    header = lines[2]
    assert "path" in header and "layer" in header and "MACs" in header  # key columns
    assert "1x1(256, s=1," in text and "4.09G" in text
    if "out mem" in header:  # units stay with their numbers
        assert "3.06 MiB" in text and "784 KiB" in text


def test_at_80_columns_the_least_important_go_first_and_a_note_says_so() -> None:
    text = to_text(render.analyze_grid(RESNET), 60)
    header = text.splitlines()[2].split()
    assert "FLOP/B" not in header and "share" not in header and "output" not in header
    assert "params" in header and "out" in header
    assert "not shown at 60 columns: output, share, FLOP/B" in " ".join(text.split())
    wide = to_text(render.analyze_grid(RESNET), 150)
    assert "not shown" not in wide and "FLOP/B" in wide and "··········" in wide


def test_bars_go_before_columns() -> None:
    text = to_text(render.analyze_grid(RESNET), 80)
    assert "█" not in text and "·" not in text and "share" in text.splitlines()[2]


def test_title_wraps_without_losing_characters() -> None:
    model = analyze_text(LONG_CHAIN).reports[0]
    for width in (40, 60, 80):
        text = to_text(render.analyze_grid(model), width)
        title = text.split("\n\n")[0]
        assert "".join(title.split()) == "".join(render.analyze_grid(model).title.split())
        assert "-> bn" in title.replace("\n", " ")


def test_exact_small_table_at_80_columns() -> None:
    model = analyze_text("8x8x4 -> 3x3(8, s=2) -> relu -> fc(10)").reports[0]
    assert to_text(render.analyze_grid(model), 80) == """\
8x8x4 -> 3x3(8, s=2) -> relu -> fc(10)  (8x8x4 -> 1x1x10, batch 1, float32)

 path  layer        output   MACs             share  params  out mem  FLOP/B
 ───────────────────────────────────────────────────────────────────────────
 1     3x3(8, s=2)  4x4x8   4.61K  ████████·· 78.3%     296    512 B    3.39
 2     relu         4x4x8       0  ··········  0.0%       0    512 B    0.00
 3     fc(10)       1x1x10  1.28K  ██········ 21.7%   1.29K     40 B    0.45

       total        1x1x10  5.89K            100.0%   1.59K        -       -

  MACs 5,888  FLOPs 11,776  other ops 266  params 1,586 (6.20 KiB)  buffers 0
    peak activations 1.50 KiB
"""


def test_ascii_glyphs() -> None:
    model = analyze_text("8x8x4 -> 3x3(8, s=2) -> relu -> fc(10)").reports[0]
    text = to_text(render.analyze_grid(model), 100, glyphs=ASCII)
    assert text.isascii() and "########.." in text


def test_compare_table_at_60_columns_keeps_models_and_ratios() -> None:
    models = [analyze_text(text).reports[0]
              for text in ("256 -> 4x4(256)", "256 -> 1x1(64) -> 4x4(256)")]
    text = to_text(render.compare_grid(compare(models)), 60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "3.76x fewer" in text and "baseline" in text and "not shown at 60" in text


def test_color_is_bold_title_and_header_only() -> None:
    model = analyze_text("8 -> relu").reports[0]
    text = to_text(render.analyze_grid(model), 80, color=True)
    assert text.startswith("\x1b[1m8 -> relu") and text.count("\x1b[1m") == 2


def _grids() -> list[render.Grid]:
    from types import SimpleNamespace

    from convcost.check import run_check
    from convcost.roofline.apply import apply_to_analysis, resolve_devices
    from convcost.roofline.devices import shipped_devices
    from convcost.roofline.tables import devices_grid

    analysis = analyze_text("direct: 256 -> 4x4(256)\nbottleneck: 256 -> 1x1(64) -> 4x4(256)")
    apply_to_analysis(analysis, resolve_devices(("t4", "h100-sxm")))
    machine = SimpleNamespace(blas="openblas 0.3.31", blas_arch="SkylakeX", threads=2,
                              cpu_count=2)
    calibration = SimpleNamespace(machine=machine, gemm_peak_gflops={"float32": 198.8},
                                  memory_bandwidth_gbs=12.5, warnings=["a warning " * 12])
    return [render.analyze_grid(RESNET), *render.compare_grids(compare(analysis.reports)),
            render.analyze_grid(analysis.reports[1]), devices_grid(shipped_devices()),
            render.calibration_grid(calibration), render.summary_grid(analysis.reports),
            render.check_grid(run_check(list(analysis.reports), {"macs": 500_000}))]


@pytest.mark.parametrize("width", [60, 80, 100, 150])
def test_every_table_fits_and_keeps_its_key_columns(width: int) -> None:
    for grid in _grids():
        text = to_text(grid, width)
        lines = text.splitlines()
        assert all(line == line.rstrip() for line in lines), grid.title
        header = lines[lines.index("") + 1]
        keys = [column.name for column in grid.columns if column.priority == 0]
        assert all(key in header for key in keys), (grid.title, header)
        if sum(len(key) + 2 for key in keys) < width:
            assert all(len(line) <= width for line in lines), grid.title
        assert "…" not in text


def test_notes_under_the_tables_wrap_whole() -> None:
    from convcost.render_text import wrap_note

    note = "benchmarked with openblas 0.3.31.188.0 (SkylakeX), 2 BLAS threads on 2 CPUs; " * 2
    lines = wrap_note(note, 60)
    assert all(len(line) <= 60 for line in lines) and len(lines) > 2
    assert "".join(" ".join(lines).split()) == "".join(note.split())


def test_long_paths_wrap_after_their_separators_and_keep_every_character() -> None:
    from convcost.render_text import _wrap_cell

    path = "/features/features.1/features.1.0/block/block.2/LayerNormalization"
    lines = _wrap_cell(path, 22)
    assert "".join(lines) == path and all(len(line) <= 22 for line in lines)
    assert lines == ["/features/features.1/", "features.1.0/block/", "block.2/",
                     "LayerNormalization"]
    assert _wrap_cell("x" * 30, 12) == ["x" * 12, "x" * 12, "x" * 6]
    assert _wrap_cell("a/" + "y" * 25, 10) == ["a/", "y" * 10, "y" * 10, "y" * 5]
