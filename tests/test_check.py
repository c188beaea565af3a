"""Budgets and baselines as a library: matching, tolerance and verdicts."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

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
    assert parse_tolerance("1%") == Fraction(1, 100)
    assert parse_tolerance("2.5 %") == Fraction(1, 40)
    assert parse_tolerance("0.05") == Fraction(1, 20)
    assert parse_tolerance("0") == 0
    for text in ("-1%", "lots", "nan", "inf", "nan%", "inf%", "1e999%", "1e-3", "15", "1",
                 "", "%", "1" * 20 + "%"):
        with pytest.raises(ValueError):
            parse_tolerance(text)
    with pytest.raises(ValueError, match="write '15%'"):  # a bare 15 never means 1500%
        parse_tolerance("15")


def test_load_baseline_checks_the_document(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document(_models("net: 8 -> relu"), [])))
    assert [m.name for m in load_baseline(str(good)).models] == ["net"]
    for content, message in [("not json", "is not JSON"), ("[]", "is not a convcost/1"),
                             ('{"schema": "convcost/1", "models": [{"x": 1}]}',
                              "no name or no totals")]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(BaselineError, match=message):
            load_baseline(str(bad))
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load_baseline(str(tmp_path / "missing.json"))


# -- issue 11: check never passes falsely ------------------------------------------------------


def _file_models(tmp_path: Path, text: str, spelled: str) -> list[ModelReport]:
    """The models of ``text`` saved as specs/x.convcost and read as ``spelled``."""
    from convcost.analysis import analyze_arguments

    (tmp_path / "specs").mkdir(exist_ok=True)
    (tmp_path / "specs" / "x.convcost").write_text(text)
    return analyze_arguments([spelled]).reports


@pytest.mark.parametrize("spelled", ["./specs", "specs//x.convcost", "{root}/specs",
                                     "specs/../specs/x.convcost"])
def test_source_paths_are_normalised_so_unnamed_models_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelled: str) -> None:
    monkeypatch.chdir(tmp_path)
    before = [m.to_json() for m in _file_models(tmp_path, "8x8x8 -> 1x1(8)\n", "specs/")]
    assert before[0]["name"] == os.path.join("specs", "x.convcost") + ":1"
    now = _file_models(tmp_path, "8x8x8 -> 1x1(80)\n", spelled.format(root=tmp_path))
    verdict = run_check(now, {}, before)
    assert (verdict.added, verdict.removed) == ((), ())
    assert not verdict.passed and verdict.failures[0].metric == "macs"


def test_baseline_spelled_with_another_path_still_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = [dict(m.to_json(), source="./specs/x.convcost", name="./specs/x.convcost:1")
              for m in _file_models(tmp_path, "8x8x8 -> 1x1(8)\n", "specs")]
    verdict = run_check(_file_models(tmp_path, "8x8x8 -> 1x1(80)\n", "specs"), {}, before)
    assert verdict.removed == () and not verdict.passed


def test_a_rename_at_the_same_file_and_line_is_flagged_and_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = [m.to_json() for m in _file_models(tmp_path, "old: 8x8x8 -> 1x1(8)\n", "specs")]
    verdict = run_check(_file_models(tmp_path, "new: 8x8x8 -> 1x1(32)\n", "specs"), {}, before)
    assert [(r.old, r.new, r.line) for r in verdict.renamed] == [("old", "new", 1)]
    assert (verdict.added, verdict.removed) == ((), ())
    assert not verdict.passed  # the renamed model grew 4x
    assert verdict.to_json()["renamed"][0]["from"] == "old"


def test_a_baseline_made_in_another_working_directory_still_catches_a_regression(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Made at the root as 'specs/x.convcost:1', checked from inside specs/ as 'x.convcost:1':
    # the same file and line, so the 4x regression must fail, not pass as added + removed.
    monkeypatch.chdir(tmp_path)
    before = [m.to_json() for m in _file_models(tmp_path, "8x8x8 -> 1x1(8)\n", "specs")]
    monkeypatch.chdir(tmp_path / "specs")
    now = _file_models(tmp_path, "8x8x8 -> 1x1(32)\n", ".")
    verdict = run_check(now, {}, before)
    assert (verdict.added, verdict.removed) == ((), ())
    assert len(verdict.renamed) == 1 and not verdict.passed


def test_an_unnamed_model_moved_down_a_line_is_still_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A comment added above renamed 'specs/x.convcost:1' to ':2'; its 4x regression showed
    # as added + removed and the check passed.
    monkeypatch.chdir(tmp_path)
    before = [m.to_json() for m in _file_models(tmp_path, "8x8x8 -> 1x1(8)\nb: 8 -> relu\n",
                                                "specs")]
    now = _file_models(tmp_path, "# new comment\n8x8x8 -> 1x1(32)\nb: 8 -> relu\n", "specs")
    verdict = run_check(now, {}, before)
    assert (verdict.added, verdict.removed) == ((), ())
    assert [(r.old, r.new) for r in verdict.renamed] == [
        (os.path.join("specs", "x.convcost") + ":1", os.path.join("specs", "x.convcost") + ":2")]
    assert not verdict.passed


def test_chains_on_the_command_line_are_not_renames() -> None:
    before = [m.to_json() for m in _models("a: 8 -> relu")]
    verdict = run_check(_models("b: 8 -> 1x1(8)"), {}, before)
    assert verdict.renamed == () and verdict.added == ("b",) and verdict.removed == ("a",)


def test_tolerance_comparison_is_exact_in_integers() -> None:
    before = [m.to_json() for m in _models("net: 10x10x100 -> 1x1(100)")]
    grown = _models("net: 10x10x100 -> 1x1(105)")
    assert run_check(grown, {}, before, tolerance=Fraction(5, 100)).passed
    assert not run_check(grown, {}, before, tolerance=Fraction(4999, 100000)).passed
    reason = run_check(grown, {}, before, tolerance=Fraction(1, 100)).failures[0].reason
    assert "grew 5.00%" in reason and "tolerance of 1%" in reason
    with pytest.raises(ValueError):
        run_check(grown, {}, before, tolerance=-0.5)


def test_verdict_with_input_errors_is_an_error() -> None:
    verdict = run_check(_models("net: 8 -> relu"), {"macs": 10}).with_errors(1)
    assert not verdict.passed and verdict.status == "ERROR"
    document_ = verdict.to_json()
    assert document_["passed"] is False and document_["errors"] == 1
    assert document_["status"] == "ERROR"


def _baseline_file(tmp_path: Path, models: list[dict[str, object]], **extra: object) -> str:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"schema": "convcost/1", "models": models, "errors": [],
                                **extra}))
    return str(path)


def _good_entry() -> dict[str, Any]:
    return _models("net: 8x8x8 -> 1x1(8)")[0].to_json()


@pytest.mark.parametrize("field, value, message", [
    ("totals.macs", float("nan"), "must be an integer"),
    ("totals.macs", 1e30, "must be an integer"),
    ("totals.macs", 2.5, "must be an integer"),
    ("totals.macs", 2**64, "outside"),
    ("totals.params", -1, "outside"),
    ("totals.macs", True, "must be an integer"),
    ("totals.macs", "12", "must be an integer"),
    ("source", ["a", "b"], "'source' must be a string, not a list"),
    ("line", -3, "outside"),
    ("batch", 0, "outside"),
    ("dtype", "float128", "must be one of"),
])
def test_malformed_baselines_are_refused(tmp_path: Path, field: str, value: object,
                                         message: str) -> None:
    entry = _good_entry()
    if field.startswith("totals."):
        entry["totals"] = {**entry["totals"], field[7:]: value}
    else:
        entry[field] = value
    with pytest.raises(BaselineError, match=message):
        load_baseline(_baseline_file(tmp_path, [entry]))


def test_baseline_missing_a_total_is_refused(tmp_path: Path) -> None:
    entry = _good_entry()
    entry["totals"] = {"macs": 1}
    with pytest.raises(BaselineError, match="totals lack params"):
        load_baseline(_baseline_file(tmp_path, [entry]))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_baseline_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    # Windows PowerShell's '>' writes UTF-16 with a BOM; it was refused as 'not UTF-8 text'.
    path = tmp_path / "baseline.json"
    path.write_bytes(json.dumps(document(_models("net: 8 -> relu"), [])).encode(encoding))
    assert [m.name for m in load_baseline(str(path)).models] == ["net"]


def test_a_baseline_whose_models_disagree_with_its_configuration_is_refused(
        tmp_path: Path) -> None:
    # Models made at batch 4 under a configuration edited to batch 1 compared as batch 1:
    # a 4x regression read as -75% and passed.
    entry = dict(_good_entry(), batch=4)
    path = _baseline_file(tmp_path, [entry],
                          configuration={"batch": 1, "dtype": "float32", "size": None})
    with pytest.raises(BaselineError, match="was made with batch 4, float32, but the "
                                            "document's configuration says batch 1"):
        load_baseline(path)


def test_hostile_baseline_files_give_located_errors(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BaselineError, match="nested too deeply"):
        load_baseline(str(deep))
    digits = tmp_path / "digits.json"
    digits.write_text('{"schema": "convcost/1", "models": [' + "9" * 5000 + "]}")
    with pytest.raises(BaselineError, match="not usable JSON: it holds a number of thousands"):
        load_baseline(str(digits))
    if os.path.exists("/dev/zero"):
        with pytest.raises(BaselineError, match="is a device"):
            load_baseline("/dev/zero")
    with pytest.raises(BaselineError, match="is a directory"):
        load_baseline(str(tmp_path))


def test_oversized_baseline_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import convcost.baseline

    monkeypatch.setattr(convcost.baseline, "MAX_BASELINE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(" " * 2000)
    with pytest.raises(BaselineError, match="larger than"):
        load_baseline(str(path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_baseline_without_a_writer_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(BaselineError, match="is not JSON"):
        load_baseline(str(fifo))


def test_baseline_configuration_is_compared(tmp_path: Path) -> None:
    from convcost.analysis import Options

    entry = _good_entry()
    recorded = load_baseline(_baseline_file(
        tmp_path, [entry], configuration={"batch": 1, "dtype": "float32", "size": [32, 32]}))
    assert recorded.mismatch(Options((32, 32), 1, "float32")) is None
    message = recorded.mismatch(Options(None, 4, "float32"))
    assert message is not None
    assert "batch 1, float32, size 32x32" in message and "batch 4, float32, inputs as written" \
        in message
    older = load_baseline(_baseline_file(tmp_path, [dict(entry, batch=8, dtype="float16")]))
    assert older.mismatch(Options(None, 8, "float16")) is None
    assert older.mismatch(Options(None, 2, "float16")) is not None
    mixed = load_baseline(_baseline_file(tmp_path, [entry, dict(entry, batch=2)]))
    assert mixed.mismatch(Options()) is not None


def test_added_and_removed_models_sharing_a_name_are_qualified_by_source() -> None:
    from convcost.analysis import analyze_text

    before = [m.to_json() for m in analyze_text("net: 8 -> relu", source_name="a").reports] + \
        [m.to_json() for m in analyze_text("net: 8 -> relu", source_name="b").reports]
    now = analyze_text("net: 8 -> relu", source_name="c").reports
    verdict = run_check(now, {}, before)
    assert verdict.added == ("net",) and verdict.removed == ("a:net", "b:net")
