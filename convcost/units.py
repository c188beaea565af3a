"""Human units for tables (``1.05M``, ``4.00 MiB``, ``3.76x fewer``) and parsing them back.

Exact counts stay integers: a quotient too large for a float (a count of 10^400, say) is
written in scientific notation from the exact integers, never an OverflowError; a duration
or ratio that is not finite is written '-'."""

from __future__ import annotations

import math
import re

_SI = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))
_IEC = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def count(value: int) -> str:
    """A count with an SI suffix and three significant digits: 1048576 -> '1.05M'."""
    for suffix, scale in _SI:
        if abs(value) >= scale:
            return _quotient(value, scale) + suffix
    return _whole(value)


def nbytes(value: int) -> str:
    """Bytes in binary units: 4195328 -> '4.00 MiB'."""
    for suffix, scale in _IEC:
        if abs(value) >= scale:
            return f"{_quotient(value, scale)} {suffix}"
    return f"{_whole(value)} B"


#: Quotients at or above this are written in scientific notation (a plain float would print
#: up to 300 digits, and an int above ~1e308 does not convert to float at all).
_PLAIN_LIMIT = 10**15


def _quotient(value: int, scale: int) -> str:
    """``value / scale`` to three significant digits, exactly for any size of integer."""
    if abs(value) >= _PLAIN_LIMIT * scale:
        return _scientific(value, scale)
    return _three_digits(value / scale)


def _whole(value: int) -> str:
    """An integer as digits (scientific beyond 15 digits: Python refuses str() of huge ints)."""
    if abs(value) >= _PLAIN_LIMIT:
        return _scientific(value, 1)
    return str(value)


def _scientific(value: int, divisor: int) -> str:
    """``value / divisor`` as '1.23e+45', from the exact integers (decimal, not float)."""
    from decimal import Context  # only for astronomical values: it costs start-up time

    context = Context(prec=3)
    return format(context.divide(context.create_decimal(value), divisor), ".2e")


def _three_digits(number: float) -> str:
    if abs(number) >= 100:
        return f"{number:.0f}"
    if abs(number) >= 10:
        return f"{number:.1f}"
    return f"{number:.2f}"


def seconds(value: float) -> str:
    """A duration with three significant digits: 0.0123 -> '12.3 ms'."""
    if not math.isfinite(value):
        return "-"
    for suffix, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{_three_digits(value / scale)} {suffix}"
    return f"{_three_digits(value / 1e-9)} ns"


def times(ratio: float | None) -> str:
    """A speedup or ratio as a factor: 3.7647 -> '3.76x'; None -> '-'."""
    return "-" if ratio is None or not math.isfinite(ratio) else f"{ratio:.2f}x"


def ratio_words(value: int, baseline: int) -> str:
    """How ``value`` compares to ``baseline``: '3.76x fewer', '1.20x more', 'same'."""
    if value == baseline:
        return "same"
    if value == 0 or baseline == 0:
        return "none" if value == 0 else "new"
    if value < baseline:
        return f"{_factor(baseline, value)}x fewer"
    return f"{_factor(value, baseline)}x more"


def _factor(larger: int, smaller: int) -> str:
    """``larger / smaller`` with two decimals, exactly for any size of integer."""
    if abs(larger) >= _PLAIN_LIMIT * abs(smaller):
        return _scientific(larger, smaller)
    return f"{larger / smaller:.2f}"


def ratio_phrase(value: int, baseline: int, noun: str) -> str:
    """:func:`ratio_words` with a noun: '3.76x fewer MACs', 'same params'."""
    words = ratio_words(value, baseline)
    if noun.endswith(("memory", "time")):  # amounts, not counts: less, not fewer
        words = words.replace("fewer", "less")
    return f"{'no' if words == 'none' else words} {noun}"


def exact_ratio(value: int, baseline: int) -> str:
    """The exact ratio of the larger to the smaller as a fraction, e.g. '64/17' (the factor
    :func:`ratio_words` rounds)."""
    if min(value, baseline) == 0:
        return "inf"
    from fractions import Fraction  # imported here: tables that never need it skip its cost

    fraction = Fraction(max(value, baseline), min(value, baseline))
    return str(fraction.numerator) if fraction.denominator == 1 else str(fraction)


_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*\Z")
_COUNT_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTE_SUFFIXES = {
    "": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
    "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}


def parse_quantity(text: str, *, byte_units: bool = False) -> int:
    """Parse '4.2G', '26M', '120MB' or '1.5GiB' into an exact integer (ValueError if bad)."""
    match = _QUANTITY.match(text)
    suffixes = _BYTE_SUFFIXES if byte_units else _COUNT_SUFFIXES
    if match and len(match.group(1)) > 40:  # Fraction() of 5,000 digits hits int()'s limit
        raise ValueError(f"'{text[:20]}...' is too long to be a quantity")
    if not match or match.group(2).upper() not in suffixes:
        allowed = "K, M, G, T, KB, MB, GB, KiB, MiB or GiB" if byte_units else "K, M, G or T"
        raise ValueError(f"'{text}' is not a number with an optional suffix {allowed}")
    from fractions import Fraction

    return int(Fraction(match.group(1)) * suffixes[match.group(2).upper()])
