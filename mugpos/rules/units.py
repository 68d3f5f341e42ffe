"""Lengths people write, turned into centimetres exactly (1 in = 2.54 cm, 1 ft = 30.48 cm by definition).

Two steps: `normalise_numbers` rewrites number words and fractions into decimals ("a foot and a half"
-> "1.5 foot"), then `find_quantities` reads number + unit pairs. Pure string work, no guessing: a
vague amount ("a few inches") is reported, never turned into a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FACTORS: dict[str, float] = {"mm": 0.1, "cm": 1.0, "m": 100.0, "in": 2.54, "ft": 30.48}
_ALIASES: dict[str, str] = {
    "mm": "mm", "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "cm": "cm", "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "cms": "cm", "m": "m", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "in": "in", "inch": "in", "inches": "in", '"': "in", "''": "in", "ins": "in",
    "ft": "ft", "foot": "ft", "feet": "ft", "'": "ft",
}  # fmt: skip
UNITS: tuple[str, ...] = tuple(_FACTORS)


def canonical_unit(unit: str) -> str:
    """`inches` -> `in`; raises ValueError for anything that is not a length unit."""
    key = unit.strip().lower().rstrip(".")
    if key not in _ALIASES:
        raise ValueError(f"unknown length unit {unit!r}")
    return _ALIASES[key]


def to_cm(value: float, unit: str) -> float:
    """`value` in `unit` as centimetres, by the exact definitions of each unit."""
    u = canonical_unit(unit)
    if u == "cm":
        return float(value)
    if u == "mm":
        return value / 10.0
    return value * _FACTORS[u]


# ---------------------------------------------------------------------------------------------
# number words

_ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMWORD = "|".join(sorted([*_ONES, *_TENS, *_SCALES], key=len, reverse=True))
_NUMRUN = re.compile(rf"\b(?:{_NUMWORD})(?:(?:\s+|-)(?:and\s+)?(?:{_NUMWORD}))*\b")
_FRACTION_CHARS = {"½": " 1/2", "¼": " 1/4", "¾": " 3/4", "⅓": " 1/3", "⅔": " 2/3", "⅛": " 1/8"}
_UNIT_WORD = r"(?:millimet(?:er|re)s?|centimet(?:er|re)s?|met(?:er|re)s?|inch(?:es)?|foot|feet|mm|cm|ft|in|m)"
_VAGUE = re.compile(
    rf"\b(?:a\s+few|several|some|a\s+bit\s+of|a\s+little|many|a\s+number\s+of)\s+{_UNIT_WORD}\b"
)


def words_to_int(words: str) -> int:
    """'one hundred and twenty-five' -> 125. Raises ValueError on anything else."""
    total = current = 0
    seen = False
    for tok in re.split(r"[\s-]+", words.strip().lower()):
        if tok == "and" or not tok:
            continue
        if tok in _ONES:
            current += _ONES[tok]
        elif tok in _TENS:
            current += _TENS[tok]
        elif tok == "hundred":
            current = max(current, 1) * 100
        elif tok == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            raise ValueError(f"not a number word: {tok!r}")
        seen = True
    if not seen:
        raise ValueError("no number words")
    return total + current


def _fmt(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _sub_numruns(m: re.Match[str]) -> str:
    try:
        return str(words_to_int(m.group(0)))
    except ValueError:
        return m.group(0)


def normalise_numbers(text: str) -> str:
    """Rewrite number words, fractions and compound lengths as plain decimals.

    "half a foot" -> "0.5 foot", "one and a half inches" -> "1.5 inches", "a foot and a half" ->
    "1.5 foot", "1 1/2 in" -> "1.5 in", "twenty-five cm" -> "25 cm". Leaves everything else alone.
    """
    t = text
    for ch, rep in _FRACTION_CHARS.items():
        t = t.replace(ch, rep)
    t = t.replace("”", '"').replace("“", '"').replace("″", '"').replace("′", "'").replace("’", "'")
    t = re.sub(r"\ba\s+(?=(?:hundred|thousand)\b)", "one ", t)
    t = _NUMRUN.sub(_sub_numruns, t)
    t = re.sub(r"\ba\s+dozen\b", "12", t)
    t = re.sub(r"\ba\s+couple\s+(?:of\s+)?", "2 ", t)
    t = re.sub(r"\b(?:a\s+)?pair\s+of\s+(?=\d|\w)", "2 ", t) if re.search(r"\bpair of\b", t) else t
    # mixed numbers and fractions: 1 1/2, 1-1/2, 3/4
    t = re.sub(
        r"\b(\d+)(?:\s+|-)(\d+)/(\d+)\b",
        lambda m: (
            _fmt(int(m.group(1)) + int(m.group(2)) / int(m.group(3))) if int(m.group(3)) else m.group(0)
        ),
        t,
    )
    t = re.sub(
        r"(?<![\d.])(\d+)/(\d+)\b",
        lambda m: _fmt(int(m.group(1)) / int(m.group(2))) if int(m.group(2)) else m.group(0),
        t,
    )
    frac = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}
    # "3 quarters of an inch", "two thirds of a foot"
    t = re.sub(
        rf"\b(\d+)\s+(quarter|third)s?\s+(?:of\s+)?(?:an?\s+)?(?={_UNIT_WORD}\b)",
        lambda m: _fmt(int(m.group(1)) * frac[m.group(2)]) + " ",
        t,
    )
    # "a foot and a half" / "2 inches and a half"
    t = re.sub(
        rf"\b(an?|\d+(?:\.\d+)?)\s+({_UNIT_WORD})\s+and\s+an?\s+(half|quarter|third)\b",
        lambda m: (
            f"{_fmt((1 if m.group(1) in ('a', 'an') else float(m.group(1))) + frac[m.group(3)])} {m.group(2)}"
        ),
        t,
    )
    # "one and a half inches", "2 and a quarter"
    t = re.sub(
        r"\b(\d+(?:\.\d+)?)\s+and\s+an?\s+(half|quarter|third)\b",
        lambda m: _fmt(float(m.group(1)) + frac[m.group(2)]),
        t,
    )
    # "half a foot", "a half inch", "a quarter of an inch", "half an inch"
    t = re.sub(
        rf"\b(?:an?\s+|one\s+)?(half|quarter|third)\s+(?:of\s+)?(?:an?\s+)?(?={_UNIT_WORD}\b)",
        lambda m: _fmt(frac[m.group(1)]) + " ",
        t,
    )
    # "a foot", "an inch", "one meter"
    t = re.sub(rf"\b(?:an?|one)\s+(?={_UNIT_WORD}\b)", "1 ", t)
    return t


@dataclass(frozen=True)
class Quantity:
    """A length found in text: its value in cm and where it was."""

    value: float
    unit: str
    cm: float
    start: int
    end: int


_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_UNIT_RX = r"(millimet(?:er|re)s?|centimet(?:er|re)s?|cms?|mm|met(?:er|re)s?|m\b|inch(?:es)?|ins?\b(?!\s+(?:a|an|the|front|one|line|row|column|each|place|order|case|between|my|your|their|our|its|his|her|them|it|there)\b)|\"|''|ft|feet|foot|')"
_COMPOUND = re.compile(
    rf"{_NUM}\s*(?:ft|feet|foot|')\s*(?:and\s+)?{_NUM}\s*(?:inch(?:es)?|in\b|\"|'')", re.IGNORECASE
)
_SIMPLE = re.compile(rf"{_NUM}\s*-?\s*{_UNIT_RX}(?![a-z])", re.IGNORECASE)


def find_quantities(text: str) -> list[Quantity]:
    """Every length in `text` (already passed through `normalise_numbers`), in order."""
    out: list[Quantity] = []
    taken: list[tuple[int, int]] = []
    for m in _COMPOUND.finditer(text):
        ft, inch = float(m.group(1)), float(m.group(2))
        cm = to_cm(ft, "ft") + to_cm(inch, "in")
        out.append(Quantity(ft * 12 + inch, "in", cm, m.start(), m.end()))
        taken.append((m.start(), m.end()))
    for m in _SIMPLE.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        value, unit = float(m.group(1)), canonical_unit(m.group(2))
        out.append(Quantity(value, unit, to_cm(value, unit), m.start(), m.end()))
    out.sort(key=lambda q: q.start)
    return out


def vague_amount(text: str) -> str | None:
    """The vague length phrase in `text` ("a few inches"), if any."""
    m = _VAGUE.search(text)
    return m.group(0) if m else None


def parse_length(text: str) -> float:
    """One length ("half a foot", '6"', "1.5 m") in cm; ValueError unless exactly one is found."""
    qs = find_quantities(normalise_numbers(text.lower()))
    if len(qs) != 1:
        raise ValueError(f"expected one length in {text!r}, found {len(qs)}")
    return qs[0].cm
