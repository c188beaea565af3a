"""Odd terminals and streams: environment normalisation and the ASCII fallback (the process
level behaviour, pipes and closed streams, is in test_cli.py)."""

from __future__ import annotations

import pytest

from convcost.cli.terminal import ERRORS, prepare_environment


@pytest.mark.parametrize(("before", "after"), [
    ({"COLUMNS": "0"}, {}),
    ({"COLUMNS": "-5", "LINES": "x"}, {}),
    ({"COLUMNS": "٨٠"}, {}),
    ({"COLUMNS": "80"}, {"COLUMNS": "80"}),
    ({"FORCE_COLOR": "0"}, {"NO_COLOR": "1"}),
    ({"FORCE_COLOR": "false"}, {"NO_COLOR": "1"}),
    ({"FORCE_COLOR": ""}, {}),
    ({"FORCE_COLOR": "1"}, {"FORCE_COLOR": "1"}),
    ({"NO_COLOR": ""}, {}),
    ({"NO_COLOR": "1"}, {"NO_COLOR": "1"}),
    # A dumb terminal showed the red 'error:' as escape codes.
    ({"TERM": "dumb"}, {"TERM": "dumb", "NO_COLOR": "1"}),
    ({"TERM": "dumb", "FORCE_COLOR": "1"}, {"TERM": "dumb", "FORCE_COLOR": "1"}),
    ({"TERM": "xterm"}, {"TERM": "xterm"}),
])
def test_environment_is_normalised(before: dict[str, str], after: dict[str, str]) -> None:
    environ = dict(before)
    prepare_environment(environ)
    assert environ == after


def test_ascii_fallback_glyphs_and_escapes() -> None:
    text = "56×56 → 3x3 ███ ┃─┼ caf\u00e9 \udcff \u4e00"
    assert text.encode("ascii", ERRORS) == b"56x56 -> 3x3 ### |-+ caf\\xe9 \\xff \\u4e00"
    assert "\udcff".encode("utf-8", ERRORS) == b"\\xff"  # an undecodable file-name byte
