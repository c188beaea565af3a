"""The JSON document: the compact text writer agrees with ``json.dumps`` of the document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcost.analysis import Options, analyze_arguments, analyze_text
from convcost.cost.report import document, document_text
from convcost.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent


def _reference(models: list, errors: list, **extra: object) -> object:
    return json.loads(json.dumps(document(models, errors, **extra), allow_nan=False))


@pytest.mark.parametrize("batch, dtype", [(1, "float32"), (3, "float16")])
def test_compact_text_equals_the_document_for_every_example(batch: int, dtype: str) -> None:
    analysis = analyze_arguments([str(ROOT / "examples")], Options(batch=batch, dtype=dtype))
    assert len(analysis.reports) > 20
    text = document_text(analysis.reports, analysis.errors, extra_key=[1, None])
    assert "\n" not in text and ", " not in text.split('"spec"')[0]
    assert json.loads(text) == _reference(analysis.reports, analysis.errors, extra_key=[1, None])
    # Byte for byte, not just the same values: key order, escapes and number forms too.
    assert text == json.dumps(document(analysis.reports, analysis.errors, extra_key=[1, None]),
                              separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def test_indented_text_is_the_documents_dump() -> None:
    analysis = analyze_text("8x8x3 -> 3x3(4) -> relu")
    text = document_text(analysis.reports, [], indent=2)
    assert text == json.dumps(document(analysis.reports, []), indent=2, ensure_ascii=False)


def test_awkward_strings_and_errors_are_escaped() -> None:
    analysis = analyze_text('"q\\\\uote" ünï: 8x8x3 -> 3x3(4)\nbad: 8x8x3 -> nope',
                            source_name='dir/"odd"\\name.convcost')
    assert analysis.errors and isinstance(analysis.errors[0], SpecError)
    text = document_text(analysis.reports, analysis.errors)
    assert json.loads(text) == _reference(analysis.reports, analysis.errors)
    assert text == json.dumps(document(analysis.reports, analysis.errors), separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False)


def test_layers_with_measurements_or_predictions_take_the_general_path() -> None:
    from convcost.roofline.apply import apply_to_analysis, resolve_devices

    analysis = analyze_text("56x56x64 -> 1x1(64) -> 3x3(64) -> relu -> gap -> fc(10)")
    apply_to_analysis(analysis, resolve_devices(["t4"]))
    assert analysis.reports[0].layers[0].roofline
    text = document_text(analysis.reports, [])
    assert json.loads(text) == _reference(analysis.reports, [])


def test_zero_traffic_layers_have_null_intensity() -> None:
    analysis = analyze_text("8x8x4 -> id -> dropout")
    layers = json.loads(document_text(analysis.reports, []))["models"][0]["layers"]
    assert [layer["intensity"] for layer in layers] == [None, None]


def test_a_long_model_is_written_in_pieces_that_join_to_the_document() -> None:
    from convcost.cost.report import document_parts

    analysis = analyze_text("long: 8x8x4 -> (3x3(4) -> relu) * 2500 -> gap -> fc(3)")
    parts = list(document_parts(analysis.reports, []))
    assert len(parts) >= 5  # head, model start, 3 layer pieces, end
    assert json.loads("".join(parts)) == _reference(analysis.reports, [])
