"""Units and number words convert exactly (property tests plus a table of spoken lengths)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mugpos.rules.units import find_quantities, normalise_numbers, parse_length, to_cm, words_to_int

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell(n: int) -> str:
    """An independent speller for 0..999 ('one hundred and twenty-five')."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + spell(rest))


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(finite)
def test_inch_and_foot_are_exact(x: float) -> None:
    assert to_cm(x, "in") == x * 2.54
    assert to_cm(x, "inches") == x * 2.54
    assert to_cm(x, '"') == x * 2.54
    assert to_cm(x, "ft") == x * 30.48
    assert to_cm(x, "feet") == x * 30.48
    assert to_cm(x, "'") == x * 30.48
    assert to_cm(x, "m") == x * 100.0
    assert to_cm(x, "cm") == x
    assert to_cm(x, "mm") == x / 10.0


@given(st.integers(min_value=0, max_value=100_000))
def test_twelve_inches_make_a_foot(n: int) -> None:
    assert math.isclose(to_cm(12 * n, "in"), to_cm(n, "ft"), rel_tol=1e-12, abs_tol=1e-9)


@given(st.integers(min_value=0, max_value=999))
def test_number_words_round_trip(n: int) -> None:
    assert words_to_int(spell(n)) == n
    assert parse_length(f"{spell(n)} cm") == n


@given(st.integers(min_value=1, max_value=500), st.sampled_from(["cm", "mm", "in", "ft", "m"]))
def test_spelled_lengths_equal_digit_lengths(n: int, unit: str) -> None:
    assert parse_length(f"{spell(n)} {unit}") == parse_length(f"{n} {unit}") == to_cm(n, unit)


@given(st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=11))
def test_feet_and_inches_compound(ft: int, inch: int) -> None:
    assert math.isclose(parse_length(f"{ft}' {inch}\""), ft * 30.48 + inch * 2.54, abs_tol=1e-9)
    assert math.isclose(parse_length(f"{ft} ft {inch} in"), ft * 30.48 + inch * 2.54, abs_tol=1e-9)


@pytest.mark.parametrize(
    ("text", "cm"),
    [
        ("half a foot", 15.24),
        ("a foot and a half", 45.72),
        ("one and a half inches", 3.81),
        ("an inch and a half", 3.81),
        ("1 1/2 in", 3.81),
        ("1-1/2 inches", 3.81),
        ("3/4 inch", 1.905),
        ("three quarters of an inch", 1.905),
        ("½ inch", 1.27),
        ("a half inch", 1.27),
        ('6"', 15.24),
        ("6-inch", 15.24),
        ("6in", 15.24),
        ("twelve inches", 30.48),
        ("twenty-five cm", 25.0),
        ("150mm", 15.0),
        ("1.5 m", 150.0),
        ("a meter", 100.0),
        ("two feet", 60.96),
        ("1' 6\"", 45.72),
        ("a hundred and five millimetres", 10.5),
        ("0.25 metres", 25.0),
        ("a couple of inches", 5.08),
    ],
)
def test_spoken_lengths(text: str, cm: float) -> None:
    assert math.isclose(parse_length(text), cm, abs_tol=1e-9)


def test_in_as_a_preposition_is_not_inches() -> None:
    assert find_quantities(normalise_numbers("no more than 3 in a row")) == []
    assert find_quantities(normalise_numbers("put 2 in front of the laptop")) == []


def test_unknown_unit_is_an_error() -> None:
    with pytest.raises(ValueError):
        to_cm(3, "furlong")
