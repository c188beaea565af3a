"""The compact writer gives exactly ``json.dumps``'s compact text."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcost.cost.jsontext import compact, quote


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_SCALARS = (st.none() | st.booleans() | st.integers() | st.text()
            | st.floats(allow_nan=False, allow_infinity=False))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_compact_equals_json_dumps(value: Any) -> None:
    assert compact(value) == _dumps(value)


@pytest.mark.parametrize("text", ['', 'plain', 'q"uote\\', 'ünï €', '\x00\x1f\x7f', '\u2028',
                                  '\ud800'])
def test_quote_escapes_as_json_does(text: str) -> None:
    assert quote(text) == _dumps(text)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, [1.0, {"x": math.nan}]])
def test_non_finite_floats_are_refused_like_json(bad: Any) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        compact(bad)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        _dumps(bad)


def test_other_values_are_written_by_json_itself() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    for value in ({1: "int key", None: 2}, Level.HIGH, {"nested": {2.5: True}}):
        assert compact(value) == _dumps(value)
