"""The documented library API: ``convcost.analyze`` and ``__all__``."""

from __future__ import annotations

from pathlib import Path

import pytest

import convcost

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_analyze_chains_returns_typed_reports_in_order() -> None:
    result = convcost.analyze("256 -> 1x1(64) -> 4x4(256)", "256 -> 4x4(256)")
    assert [report.totals.macs for report in result.reports] == [278_528, 1_048_576]
    assert result.errors == []
    model = result.models[0]
    assert isinstance(model.program, convcost.Program)
    assert isinstance(model.report, convcost.ModelReport)
    assert [step.kind for step in model.program.steps] == ["conv", "conv"]


def test_analyze_paths_size_batch_dtype() -> None:
    result = convcost.analyze(EXAMPLES / "bottleneck.convcost", size=56, batch=2,
                              dtype="float16")
    direct = result.reports[0]
    assert direct.input == convcost.Shape(56, 56, 256)
    assert direct.batch == 2 and direct.dtype == "float16"
    assert direct.totals.macs == 2 * 56 * 56 * 1_048_576


def test_analyze_collects_errors_without_raising() -> None:
    result = convcost.analyze("8 -> relu", "8 -> bogus", "missing/file.convcost")
    assert [report.name for report in result.reports] == ["8 -> relu"]
    kinds = sorted(error.kind for error in result.errors)
    assert kinds == ["read", "spec"]
    assert all(isinstance(error, convcost.ConvcostError) for error in result.errors)


@pytest.mark.parametrize("kwargs", [{"batch": 0}, {"dtype": "float8"}, {"size": (0, 4)}])
def test_analyze_refuses_impossible_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        convcost.analyze("8 -> relu", **kwargs)  # type: ignore[arg-type]


def test_all_names_exist() -> None:
    for name in convcost.__all__:
        assert hasattr(convcost, name), name


def test_error_families_share_one_root() -> None:
    for error in (convcost.SpecError, convcost.ReadError, convcost.BaselineError,
                  convcost.BenchRefused, convcost.UnsupportedDtype, convcost.UsageError):
        assert issubclass(error, convcost.ConvcostError)
    assert issubclass(convcost.SpecError, convcost.InputError)
    assert issubclass(convcost.BenchRefused, convcost.BenchError)
