"""Budgets and baselines as a library: matching, tolerance and verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convcost.analysis import analyze_text
from convcost.check import BaselineError, load_baseline, parse_tolerance, run_check
from convcost.cost.report import ModelReport, document


def _models(*texts: str) -> list[ModelReport]:
    return [model for text in texts for model in analyze_text(text).reports]


def test_budgets_apply_to_every_model() -> None:
    models = _models("a: 8 -> 1x1(8)", "b: 8 -> 1x1(100)")
    verdict = run_check(models, {"macs": 100})
    assert not verdict.passed
    assert [(r.model, r.metric, r.passed) for r in verdict.results] == \
        [("a", "macs", True), ("b", "macs", False)]
    assert verdict.failures[0].reason == "MACs 800 over the budget of 100"


def test_baseline_tolerance_is_inclusive_and_relative() -> None:
    before = [m.to_json() for m in _models("net: 10x10x100 -> 1x1(100)")]
    grown = _models("net: 10x10x100 -> 1x1(105)")  # exactly 5% more MACs and params
    assert not run_check(grown, {}, before, tolerance=0.01).passed
    assert run_check(grown, {}, before, tolerance=0.05).passed
    assert run_check(grown, {}, before, tolerance=0.10).passed
    result = run_check(grown, {}, before, tolerance=0.01).failures[0]
    assert result.change == pytest.approx(0.05)
    assert result.baseline == 1_000_000 and result.now == 1_050_000


def test_models_match_by_source_and_name_then_by_unique_name() -> None:
    before = [dict(m.to_json(), source="elsewhere.convcost") for m in _models("net: 8 -> relu")]
    verdict = run_check(_models("net: 8 -> relu", "new: 8 -> relu"), {}, before)
    assert verdict.added == ("new",) and verdict.removed == ()
    assert verdict.passed


def test_shrinking_passes_and_removed_models_are_listed() -> None:
    before = [m.to_json() for m in _models("net: 8 -> 1x1(16)", "gone: 8 -> relu")]
    verdict = run_check(_models("net: 8 -> 1x1(4)"), {}, before)
    assert verdict.passed and verdict.removed == ("gone",)


def test_parse_tolerance() -> None:
    assert parse_tolerance("1%") == pytest.approx(0.01)
    assert parse_tolerance("0.05") == pytest.approx(0.05)
    with pytest.raises(ValueError):
        parse_tolerance("-1%")
    with pytest.raises(ValueError):
        parse_tolerance("lots")


def test_load_baseline_checks_the_document(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document(_models("net: 8 -> relu"), [])))
    assert [m["name"] for m in load_baseline(str(good))] == ["net"]
    for content, message in [("not json", "is not JSON"), ("[]", "is not a convcost/1"),
                             ('{"schema": "convcost/1", "models": [{"x": 1}]}',
                              "without a name or totals")]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(BaselineError, match=message):
            load_baseline(str(bad))
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(str(tmp_path / "missing.json"))
