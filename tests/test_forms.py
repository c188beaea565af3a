"""The forms of today's CNNs: gates, norms, newer activations, layer scale, channel split and
shuffle. Exact counts recomputed by hand, shapes, peak memory and located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcost.analysis import analyze_text
from convcost.cost.handlers import HANDLERS
from convcost.cost.report import ModelReport
from convcost.lang.vocab import ACTIVATION_KINDS, ALIAS_KINDS, OP_KINDS

SCHEMA = Path(__file__).resolve().parent.parent / "convcost" / "schema.json"


def _one(spec: str) -> ModelReport:
    result = analyze_text(spec)
    assert result.errors == [], [str(error) for error in result.errors]
    return result.reports[0]


def test_every_op_kind_has_a_cost_handler() -> None:
    assert set(HANDLERS) == set(OP_KINDS)


def test_schema_lists_exactly_the_op_kinds() -> None:
    layer = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]["layer"]
    assert set(layer["properties"]["kind"]["enum"]) == set(OP_KINDS)


def test_squeeze_excite_gate_counts_and_paths() -> None:
    report = _one("14x14x40 -> gate[gap -> 1x1(10) -> relu -> 1x1(40) -> hardsigmoid]")
    paths = [(layer.path, layer.kind) for layer in report.layers]
    assert paths == [("1.gate.1", "gap"), ("1.gate.2", "conv"), ("1.gate.3", "relu"),
                     ("1.gate.4", "conv"), ("1.gate.5", "hardsigmoid"), ("1.mul", "mul")]
    assert report.totals.macs == 40 * 10 + 10 * 40
    assert report.totals.params == (40 * 10 + 10) + (10 * 40 + 40)
    hw = 14 * 14 * 40
    # gap 1 per input element, biases 10 + 40, relu 10, hardsigmoid 40, multiply 1 per output
    assert report.totals.other_ops == hw + 10 + 40 + 10 + 40 + hw
    assert report.output == report.input
    # the input stays alive while the gate runs, and until the multiply has read it
    mul = report.layers[-1]
    assert mul.traffic_bytes == 4 * (hw + 40 + hw)
    assert report.totals.peak_activation_bytes == 4 * (hw + 40 + hw)


def test_elementwise_gate_of_the_input_shape() -> None:
    report = _one("8x8x4 -> gate[3x3(4) -> sigmoid]")
    assert report.totals.macs == 9 * 4 * 4 * 64
    assert report.totals.other_ops == 256 + 256 + 256  # bias, sigmoid, multiply
    # input + conv output + sigmoid output: the input is held for the multiply
    assert report.totals.peak_activation_bytes == 4 * (256 * 3)


@pytest.mark.parametrize("word, params, ops", [
    ("ln", 2 * 32, 5), ("layernorm(noaffine)", 0, 4), ("gn(8)", 2 * 32, 5),
    ("groupnorm(4, noaffine)", 0, 4), ("instancenorm", 0, 4), ("instancenorm(affine)", 64, 5),
    ("scale", 32, 1), ("layerscale", 32, 1), ("prelu", 32, 1),
])
def test_norms_and_per_channel_layers(word: str, params: int, ops: int) -> None:
    report = _one(f"4x4x32 -> {word}")
    assert (report.totals.params, report.totals.buffers) == (params, 0)
    assert report.totals.other_ops == ops * 4 * 4 * 32
    assert report.totals.macs == 0


@pytest.mark.parametrize("word", ["hardswish", "hswish", "hardsigmoid", "hsigmoid", "leakyrelu",
                                  "leakyrelu(0.2)", "elu", "elu(1.0)", "mish", "swish"])
def test_activations_cost_one_op_per_element(word: str) -> None:
    report = _one(f"4x4x8 -> {word}")
    assert report.totals.other_ops == 128 and report.totals.params == 0
    assert report.layers[0].kind in ACTIVATION_KINDS


@pytest.mark.parametrize("word", ["droppath", "droppath(0.2)", "stochasticdepth", "dropout"])
def test_identities_at_inference(word: str) -> None:
    report = _one(f"4x4x8 -> 1x1(8) -> {word}")
    layer = report.layers[1]
    assert layer.kind in ALIAS_KINDS and layer.other_ops == 0 and layer.traffic_bytes == 0
    assert report.totals.peak_activation_bytes == 4 * (128 + 128)


def test_shufflenet_unit_split_and_shuffle() -> None:
    report = _one("28x28x116 -> split[id | 1x1(58, nobias) -> bn -> relu -> 3x3(dw, nobias) "
                  "-> bn -> 1x1(58, nobias) -> bn -> relu] -> shuffle(2)")
    paths = [layer.path for layer in report.layers]
    assert paths[:3] == ["1.b1.slice", "1.b1.1", "1.b2.slice"]
    assert paths[-2:] == ["1.concat", "2"]
    assert report.totals.macs == 28 * 28 * (58 * 58 + 9 * 58 + 58 * 58)
    assert report.totals.params == 58 * 58 + 9 * 58 + 58 * 58 + 3 * 2 * 58
    assert report.output.c == 116
    shuffle = report.layers[-1]
    assert shuffle.kind == "shuffle" and shuffle.other_ops == 0
    assert shuffle.output_bytes == 4 * 28 * 28 * 116
    slices = [layer for layer in report.layers if layer.kind == "slice"]
    assert [layer.output.c for layer in slices] == [58, 58]
    assert all(layer.traffic_bytes == 0 for layer in slices)


def test_split_parts_are_views_of_the_held_input() -> None:
    # input 1024 elements stays alive (a view feeds branch 1); conv writes 512; concat 1024
    report = _one("8x8x16 -> split[id | 1x1(8)]")
    assert report.totals.peak_activation_bytes == 4 * (1024 + 512 + 1024)


@pytest.mark.parametrize("spec, message", [
    ("8x8x16 -> gate[gap -> 1x1(8)]", "gate shape 1x1x8 does not fit the input 8x8x16"),
    ("8x8x15 -> split[id | 1x1(4)]", "cannot split 15 channels into 2 equal parts"),
    ("8x8x16 -> shuffle(3)", "16 channels do not divide into 3 groups for shuffle"),
    ("8x8x16 -> gn(5)", "16 channels do not divide into 5 groups for gn"),
    ("8x8x16 -> shuffle", "shuffle needs a group count, e.g. shuffle(2)"),
])
def test_misuse_is_a_located_error(spec: str, message: str) -> None:
    result = analyze_text(spec)
    assert result.reports == [] and len(result.errors) == 1
    error = result.errors[0]
    assert message in error.message and error.line == 1 and error.column > 1
