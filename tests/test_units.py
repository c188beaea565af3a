"""Human units: exact for any size of integer, never an OverflowError, never 'nan'."""

from __future__ import annotations

from convcost import units


def test_everyday_values_are_unchanged() -> None:
    assert units.count(1048576) == "1.05M"
    assert units.nbytes(4195328) == "4.00 MiB"
    assert units.ratio_words(17, 64) == "3.76x fewer"
    assert units.seconds(0.0123) == "12.3 ms"


def test_astronomical_counts_format_without_float_overflow() -> None:
    huge = 10**5000 + 7  # far beyond a float and Python's 4,300-digit str() limit
    assert units.count(huge) == "1.00e+4988T"
    assert units.nbytes(huge) == "9.31e+4990 GiB"
    assert units.count(10**20) == "100000000T"
    assert units.count(10**28) == "1.00e+16T"
    assert units.ratio_words(huge, 3) == "3.33e+4999x more"
    assert units.ratio_words(3, 10**30) == "3.33e+29x fewer"


def test_non_finite_durations_and_ratios_are_dashes() -> None:
    assert units.seconds(float("nan")) == "-"
    assert units.seconds(float("inf")) == "-"
    assert units.times(float("inf")) == "-"


def test_quantities_with_thousands_of_digits_are_refused_plainly() -> None:
    import pytest

    with pytest.raises(ValueError, match="too long to be a quantity"):
        units.parse_quantity("9" * 5000 + "MB", byte_units=True)
