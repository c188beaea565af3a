"""``convcost language``: the reference shipped in the package, and the LICENSE."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result

from convcost.cli.language import printable, reference_text, sections
from tests.conftest import ROOT

Run = Callable[..., Result]


def test_packaged_reference_is_docs_language() -> None:
    # One text: convcost/language.md is what a wheel ships; docs/language.md is its copy
    # for readers of the repository. Edit one, copy it to the other.
    assert reference_text() == (ROOT / "docs" / "language.md").read_text(encoding="utf-8")


def test_default_is_the_grammar_and_the_conventions(run: Run) -> None:
    result = run("language")
    assert result.exit_code == 0
    assert "## Grammar summary" in result.stdout and "## Counting conventions" in result.stdout
    assert "chain      := input '->' sequence" in result.stdout
    assert "Sections (convcost language TOPIC, or --all):" in result.stdout


def test_topics_and_all(run: Run) -> None:
    paths = run("language", "paths")
    assert paths.exit_code == 0 and paths.stdout.startswith("## Layer paths")
    whole = run("language", "--all").stdout
    assert whole == printable(reference_text()) and "<!--" not in whole
    assert whole.startswith("# The convcost chain language\n\nThis page is")
    missing = run("language", "nonsense")
    assert missing.exit_code == 2 and "Layer paths" in missing.output


def test_the_documented_topics_find_their_subsections(run: Run) -> None:
    # The README and --help name 'padding' and 'fragments'; no '##' heading holds them.
    padding = run("language", "padding")
    assert padding.exit_code == 0 and padding.stdout.startswith("### `same` padding")
    assert "### Asymmetric padding" in padding.stdout and "## Structure" not in padding.stdout
    fragments = run("language", "fragments")
    assert fragments.exit_code == 0 and fragments.stdout.startswith("### Fragments:")
    assert "## Today's CNNs" not in fragments.stdout  # a '##' heading ends the subsection


def test_sections_ignore_headings_in_code() -> None:
    found = sections("## A\ntext\n```\n## not a heading\n```\n## B\nmore\n")
    assert [section.heading for section in found] == ["A", "B"]


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "2026 convcost developers" in text
