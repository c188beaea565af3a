"""The spec corpus: every file in tests/data/valid must analyse cleanly; every file in
tests/data/invalid must fail with exactly the message in its ``.err`` twin (caret included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convcost.analysis import analyze_inputs
from convcost.inputs import collect, source_path

DATA = Path(__file__).parent / "data"
VALID = sorted((DATA / "valid").glob("*.convcost"))
INVALID = sorted((DATA / "invalid").glob("*.convcost"))


def _analyze(path: Path) -> tuple[int, str]:
    """Models analysed and the full error text, with the source named by its file name."""
    inputs, errors = collect([str(path)])
    analysis = analyze_inputs(inputs)
    messages = "\n".join(str(error) for error in [*errors, *analysis.errors])
    return len(analysis.reports), messages.replace(source_path(str(path)), path.name)


def test_corpus_is_not_empty() -> None:
    assert len(VALID) >= 20
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", VALID, ids=[path.stem for path in VALID])
def test_valid_file_analyses(path: Path) -> None:
    models, messages = _analyze(path)
    assert messages == ""
    assert models >= 1


@pytest.mark.parametrize("path", INVALID, ids=[path.stem for path in INVALID])
def test_invalid_file_fails_with_its_message(path: Path) -> None:
    _, messages = _analyze(path)
    expected = path.with_suffix(".err").read_text(encoding="utf-8")
    assert messages + "\n" == expected
