"""Compact JSON text without importing the ``json`` package.

Importing ``json`` costs about 3 ms, 4% of ``python -c "import click"``, the yardstick of
convcost's start-up; a piped ``analyze --format json`` needs only compact text of plain
values. :func:`quote` is the C module ``_json``'s own string escaping (the one ``json``
uses), and :func:`compact` writes dicts with string keys, lists, tuples, strings, ints,
floats, booleans and None. The text equals ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` (the tests compare them byte for byte); any other value
is handed to ``json.dumps`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from _json import encode_basestring as quote  # CPython's C accelerator
except ImportError:  # pragma: no cover - a Python without it: the package's own
    from json.encoder import encode_basestring as quote

__all__ = ["compact", "quote"]

_INFINITY = float("inf")


def compact(value: Any) -> str:
    """``value`` as compact JSON text (see the module docstring); ``ValueError`` for a NaN or
    an infinity, as ``json.dumps`` with ``allow_nan=False``."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is str:
        out(quote(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif kind is int:
        out(int.__repr__(value))
    elif kind is float:
        if value != value or value in (_INFINITY, -_INFINITY):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        out(float.__repr__(value))
    elif kind is dict and all(type(key) is str for key in value):
        out("{")
        first = True
        for key, item in value.items():
            out(quote(key) + ":" if first else "," + quote(key) + ":")
            first = False
            _write(item, out)
        out("}")
    elif kind is list or kind is tuple:
        out("[")
        for position, item in enumerate(value):
            if position:
                out(",")
            _write(item, out)
        out("]")
    else:  # anything else (other keys, subclasses): exactly as json writes it
        import json

        out(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
