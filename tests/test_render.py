"""Rendering: deterministic tables on a fixed-width, colourless console; Markdown; units."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from convcost import render, units
from convcost.analysis import analyze_text
from convcost.compare import compare


def _text(renderable: object) -> str:
    console = Console(width=100, color_system=None, file=io.StringIO(), record=True)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def test_analyze_table_exact() -> None:
    model = analyze_text("8x8x4 -> 3x3(8, s=2) -> relu -> fc(10)").reports[0]
    assert _text(render.to_rich(render.analyze_grid(model))) == """\
8x8x4 -> 3x3(8, s=2) -> relu -> fc(10)  (8x8x4 -> 1x1x10, batch 1, float32)

 path  layer        output   MACs             share  params  out mem  FLOP/B
 ───────────────────────────────────────────────────────────────────────────
 1     3x3(8, s=2)  4x4x8   4.61K  ████████·· 78.3%     296    512 B    3.39
 2     relu         4x4x8       0  ··········  0.0%       0    512 B    0.00
 3     fc(10)       1x1x10  1.28K  ██········ 21.7%   1.29K     40 B    0.45

       total        1x1x10  5.89K            100.0%   1.59K        -       -

  MACs 5,888  FLOPs 11,776  other ops 266  params 1,586 (6.20 KiB)  buffers 0  peak activations 1.50
KiB
"""


def test_compare_table_exact() -> None:
    models = [analyze_text(text).reports[0]
              for text in ("256 -> 4x4(256)", "256 -> 1x1(64) -> 4x4(256)")]
    assert _text(render.to_rich(render.compare_grid(compare(models)))) == """\
compared with 256 -> 4x4(256)

 model                        MACs  FLOPs  params  param mem  peak act.  MACs vs base
 ────────────────────────────────────────────────────────────────────────────────────
 256 -> 4x4(256)             1.05M  2.10M   1.05M   4.00 MiB   2.00 KiB      baseline
 256 -> 1x1(64) -> 4x4(256)   279K   557K    279K   1.06 MiB   1.25 KiB   3.76x fewer

  256 -> 1x1(64) -> 4x4(256) vs 256 -> 4x4(256): 3.76x fewer MACs, 3.76x fewer params, 1.60x less
peak memory (278,528 vs 1,048,576 MACs; exactly 64/17)
"""


def test_markdown_escapes_pipes_and_right_aligns_numbers() -> None:
    model = analyze_text("8x8x4 -> [1x1(2) | id]").reports[0]
    grid = render.analyze_grid(model)
    grid.title = "a | b"
    text = render.to_markdown(grid)
    assert text.splitlines()[0] == "### a | b"
    assert "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |" in text


@pytest.mark.parametrize(("value", "expected"), [
    (0, "0"), (999, "999"), (1000, "1.00K"), (1_048_576, "1.05M"), (278_528, "279K"),
    (25_557_032, "25.6M"), (4_089_184_256, "4.09G"), (15_470_264_320, "15.5G"),
])
def test_count(value: int, expected: str) -> None:
    assert units.count(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (512, "512 B"), (1024, "1.00 KiB"), (4_195_328, "4.00 MiB"), (3 * 2**30, "3.00 GiB"),
])
def test_nbytes(value: int, expected: str) -> None:
    assert units.nbytes(value) == expected


def test_ratio_words_and_phrases() -> None:
    assert units.ratio_words(278_528, 1_048_576) == "3.76x fewer"
    assert units.ratio_words(1_048_576, 278_528) == "3.76x more"
    assert units.ratio_words(5, 5) == "same"
    assert units.ratio_phrase(1280, 2048, "peak memory") == "1.60x less peak memory"
    assert units.ratio_phrase(0, 3, "MACs") == "no MACs"
    assert units.exact_ratio(278_528, 1_048_576) == "64/17"
    assert units.exact_ratio(1_048_576, 278_528) == "64/17"
    assert units.seconds(0.0123) == "12.3 ms"


@pytest.mark.parametrize(("text", "byte_units", "expected"), [
    ("4.2G", False, 4_200_000_000), ("26M", False, 26_000_000), ("1500", False, 1500),
    ("120MB", True, 120_000_000), ("1.5GiB", True, 3 * 2**29), ("64k", False, 64_000),
    ("100MiB", True, 100 * 2**20),
])
def test_parse_quantity(text: str, byte_units: bool, expected: int) -> None:
    assert units.parse_quantity(text, byte_units=byte_units) == expected


@pytest.mark.parametrize("text", ["", "G", "4.2X", "-1M", "12MB"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        units.parse_quantity(text)


def test_github_annotation_of_an_unreadable_file_has_no_line_zero() -> None:
    from convcost.check import run_check
    from convcost.errors import ReadError, SpecError

    verdict = run_check([], {}).with_errors(2)
    text = render.github_annotations(verdict, [
        ReadError("cannot read directory 'specs/locked': Permission denied", "specs/locked"),
        SpecError("bad", "specs/x.convcost", 3, 7)])
    assert "::error file=specs/locked,title=convcost spec error::cannot read" in text
    assert "::error file=specs/x.convcost,line=3,col=7,title=" in text
    assert "line=0" not in text and "col=0" not in text


def test_github_annotations_leave_out_a_line_there_is_not() -> None:
    """An ONNX model (line 0) failing a budget is annotated on its file, without line=0."""
    from convcost.analysis import analyze_text
    from convcost.check import run_check
    from convcost.render import github_annotations

    report = analyze_text("8x8x3 -> 3x3(4)").reports[0]._replace(source="m.onnx", line=0)
    text = github_annotations(run_check([report], {"macs": 1}), [])
    assert "::error file=m.onnx,title=convcost budget::" in text
    assert "line=0" not in text and "col=0" not in text
