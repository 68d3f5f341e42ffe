"""The grammar reads paraphrases, negations, units and number words; it refuses rather than guesses."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mugpos.errors import MugposError, RuleError
from mugpos.rules.grammar import parse_rule
from mugpos.rules.model import (
    AWAY_DEFAULT_CM,
    EDGE_DEFAULT_CM,
    GROUP_DEFAULT_CM,
    NEAR_DEFAULT_CM,
    SPACING_DEFAULT_CM,
    Rule,
)
from mugpos.scene.labels import COCO_CLASSES, MUG_LABELS, SURFACE_LABELS

MUG = ["cup"]
DRINKS = ["bottle", "cup", "wine glass"]
ELECTRONICS = ["cell phone", "keyboard", "laptop", "mouse", "remote", "tv"]


def parse(text: str) -> Rule:
    return parse_rule(text, max_chars=500)


def check(rule: Rule, **want: Any) -> None:
    for key, value in want.items():
        if key == "subject":
            assert rule.subject.labels == value, (rule.text, rule.subject)
        elif key == "target":
            if isinstance(value, str):
                assert rule.target is not None and rule.target.kind == value, (rule.text, rule.target)
            else:
                assert rule.target is not None and rule.target.labels == value, (rule.text, rule.target)
        elif key == "threshold_cm":
            assert rule.threshold_cm is not None and math.isclose(rule.threshold_cm, value, abs_tol=1e-3), (
                rule.text,
                rule.threshold_cm,
            )
        else:
            assert getattr(rule, key) == value, (rule.text, key, getattr(rule, key))


# ---- the rule set of the replaced system: each checked or declined with a reason ----------------
ISSUE_RULES: list[tuple[str, dict[str, Any]]] = [
    ("Keep mugs at least 6 inches away from laptops",
     dict(relation="min_gap", subject=MUG, target=["laptop"], threshold_cm=15.24, checkable=True)),
    ("Maintain a minimum distance of 8 inches between beverages and keyboards",
     dict(relation="min_gap", subject=DRINKS, target=["keyboard"], threshold_cm=20.32, checkable=True)),
    ("Ensure drinks are no closer than 4 inches to the edge of the table",
     dict(relation="edge_distance", subject=DRINKS, bound="min", threshold_cm=10.16, checkable=True)),
    ("Place all beverages on coasters when available", dict(subject=DRINKS, checkable=False)),
    ("Position mugs on the right side of the workspace",
     dict(relation="side", subject=MUG, region="right", frame="surface", checkable=True)),
    ("Keep hot beverages on heat-resistant surfaces", dict(subject=DRINKS, checkable=False)),
    ("Group all drinks together in the designated beverage area",
     dict(relation="max_gap", subject=DRINKS, target="each_other", threshold_cm=GROUP_DEFAULT_CM, checkable=True)),
    ("Cluster mugs within 12 inches of each other for easy access",
     dict(relation="max_gap", subject=MUG, target="each_other", threshold_cm=30.48, checkable=True)),
    ("Avoid placing liquids near electronic devices",
     dict(relation="min_gap", subject=DRINKS, target=ELECTRONICS, threshold_cm=AWAY_DEFAULT_CM, defaulted=True)),
    ("Keep beverages away from paper documents", dict(subject=DRINKS, checkable=False)),
    ("Ensure mugs are on stable, flat surfaces", dict(subject=MUG, checkable=False)),
    ("In office settings, place mugs on the non-dominant side", dict(checkable=False, context="office settings")),
    ("In kitchen environments, keep drinks away from cooking areas",
     dict(subject=DRINKS, checkable=False, context="kitchen settings")),
    ("During meetings, position beverages at least 10 inches from shared documents",
     dict(subject=DRINKS, checkable=False, context="meetings")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "want"), ISSUE_RULES, ids=[t for t, _ in ISSUE_RULES])
def test_issue_rule_set(text: str, want: dict[str, Any]) -> None:
    rule = parse(text)
    check(rule, **want)
    assert rule.interpretation
    if not rule.checkable:
        assert rule.reason and len(rule.reason) > 10


def test_declined_rules_say_why() -> None:
    assert "coaster" in (parse("Place all beverages on coasters when available").reason or "")
    assert "material" in (parse("Keep hot beverages on heat-resistant surfaces").reason or "")
    assert "paper" in (parse("Keep beverages away from paper documents").reason or "")
    assert "stable" in (parse("Ensure mugs are on stable, flat surfaces").reason or "")
    assert "dominant hand" in (parse("In office settings, place mugs on the non-dominant side").reason or "")
    assert "cooking" in (parse("In kitchen environments, keep drinks away from cooking areas").reason or "")


def test_interpretation_matches_design_example() -> None:
    assert parse("Keep mugs at least 6 inches away from laptops").interpretation == (
        "every mug >= 15.24 cm from every laptop"
    )


@pytest.mark.parametrize(
    "label", [name for name in COCO_CLASSES if name not in SURFACE_LABELS and name not in MUG_LABELS]
)
def test_every_label_an_answer_shows_can_be_named(label: str) -> None:
    """An answer lists `cake-1`; "keep mugs 20 cm from the cake" must then read as that label (a name
    inside a group such as food was once refused as an unknown word)."""
    rule = parse(f"keep mugs at least 20 cm from any {label}")  # "the person/chair" is the user's seat
    assert rule.relation == "min_gap" and rule.threshold_cm == 20
    assert rule.target is not None and rule.target.labels == [label], (label, rule.target)


# ---- paraphrases per form ------------------------------------------------------------------
MIN_GAP_LAPTOP = dict(relation="min_gap", subject=MUG, target=["laptop"], threshold_cm=15.24)
PARAPHRASES: list[tuple[str, dict[str, Any]]] = [
    # minimum gap, word order, negation, units
    ("no mug within 6 inches of a laptop", MIN_GAP_LAPTOP),
    ("Never put a cup within half a foot of the laptop", MIN_GAP_LAPTOP),
    ("Mugs must not be within 15.24 cm of laptops", MIN_GAP_LAPTOP),
    ("mugs should be no closer than 6\" to laptops", MIN_GAP_LAPTOP),
    ("Laptops need a 6-inch buffer from cups", MIN_GAP_LAPTOP),
    ("Don't let coffee get closer than six inches to my laptop", MIN_GAP_LAPTOP),
    ("keep a distance of 152.4 mm between the mug and the laptop", MIN_GAP_LAPTOP),
    ("A laptop and a mug should be at least 0.5 ft apart", MIN_GAP_LAPTOP),
    ("teacups: minimum 6 in from the laptop", MIN_GAP_LAPTOP),
    ("Keep your tea more than 6 inches from the notebook computer", MIN_GAP_LAPTOP),
    ("cups should stay 15 cm clear of the keyboard",
     dict(relation="min_gap", subject=MUG, target=["keyboard"], threshold_cm=15.0)),
    ("don't let cups get closer than 10 cm to the keyboard",
     dict(relation="min_gap", subject=MUG, target=["keyboard"], threshold_cm=10.0)),
    ("Keep drinks and electronics separated by at least 20cm",
     dict(relation="min_gap", subject=DRINKS, target=ELECTRONICS, threshold_cm=20.0)),
    ("a mug should never be closer than 1' 6\" to the TV",
     dict(relation="min_gap", subject=MUG, target=["tv"], threshold_cm=45.72)),
    ("Keep beverages one and a half inches from the phone",
     dict(relation="min_gap", subject=DRINKS, target=["cell phone"], threshold_cm=3.81)),
    ("Keep mugs away from laptops and keyboards",
     dict(relation="min_gap", subject=MUG, target=["keyboard", "laptop"], threshold_cm=AWAY_DEFAULT_CM)),
    ("Don't put drinks next to the computer",
     dict(relation="min_gap", subject=DRINKS, target=ELECTRONICS, threshold_cm=AWAY_DEFAULT_CM)),
    ("Don't let mugs touch the laptop", dict(relation="min_gap", subject=MUG, target=["laptop"], threshold_cm=1.0)),
    ("Keep the mug 3 cm away from everything else", dict(relation="min_gap", subject=MUG, target="any", threshold_cm=3.0)),
    # maximum gap
    ("Keep mugs within 30 cm of the keyboard",
     dict(relation="max_gap", subject=MUG, target=["keyboard"], threshold_cm=30.0)),
    ("Cups shouldn't be more than a foot from the keyboard",
     dict(relation="max_gap", subject=MUG, target=["keyboard"], threshold_cm=30.48)),
    ("The mug should be no further than twelve inches from the mouse",
     dict(relation="max_gap", subject=MUG, target=["mouse"], threshold_cm=30.48)),
    ("Keep the coffee near the laptop",
     dict(relation="max_gap", subject=MUG, target=["laptop"], threshold_cm=NEAR_DEFAULT_CM, defaulted=True)),
    ("keep my tea close to the book", dict(relation="max_gap", subject=MUG, target=["book"], threshold_cm=NEAR_DEFAULT_CM)),
    # edge
    ("Keep mugs at least 10 cm from the table edge",
     dict(relation="edge_distance", subject=MUG, bound="min", threshold_cm=10.0, edges=["left", "right", "back", "front"])),
    ("Keep mugs 4 inches from the front edge of the desk",
     dict(relation="edge_distance", subject=MUG, threshold_cm=10.16, edges=["front"])),
    ("Keep cups away from the edge", dict(relation="edge_distance", subject=MUG, threshold_cm=EDGE_DEFAULT_CM, defaulted=True)),
    ("No drink within 2 inches of the edge of the desk",
     dict(relation="edge_distance", subject=DRINKS, bound="min", threshold_cm=5.08)),
    ("Mugs must not hang over the edge", dict(relation="edge_distance", subject=MUG, bound="min", threshold_cm=0.0)),
    # sides
    ("Mugs go on the right", dict(relation="side", region="right", subject=MUG)),
    ("Keep cups on the left-hand side of the desk", dict(relation="side", region="left")),
    ("Put the coffee toward the back of the table", dict(relation="side", region="back")),
    ("Keep mugs in the front half of the workspace", dict(relation="side", region="front")),
    ("Keep mugs in the back-left corner of the table", dict(relation="side", region="back-left")),
    ("mugs belong in the centre of the table", dict(relation="side", region="center")),
    ("info: coffee should be on the left half of the image", dict(relation="side", region="left", frame="image", severity="info")),
    ("Never put mugs on the left side of the desk", dict(relation="side", region="left", negated=True)),
    ("I'm right-handed: put mugs on my non-dominant side", dict(relation="side", region="left", checkable=True)),
    # relative to objects
    ("Put the mug to the right of the laptop", dict(relation="relative", direction="right_of", target=["laptop"])),
    ("Keep mugs left of the keyboard", dict(relation="relative", direction="left_of", target=["keyboard"])),
    ("Keep mugs behind the keyboard", dict(relation="relative", direction="behind", target=["keyboard"])),
    ("Never place cups in front of the laptop",
     dict(relation="relative", direction="in_front_of", negated=True, severity="critical")),
    # on surface, counts, spacing, grouping, alignment
    ("Keep mugs on the table", dict(relation="on_surface", negated=False)),
    ("Mugs must stay on the desk", dict(relation="on_surface", negated=False, severity="critical")),
    ("No more than 2 mugs on the desk", dict(relation="count", count=2, bound="max", subject=MUG)),
    ("At most three cups at a time", dict(relation="count", count=3, bound="max")),
    ("Only one mug on the desk", dict(relation="count", count=1, bound="max")),
    ("fewer than 4 drinks on the table", dict(relation="count", count=3, bound="max", subject=DRINKS)),
    ("Keep mugs at least 5 cm apart", dict(relation="min_gap", target="each_other", threshold_cm=5.0)),
    ("Space the mugs out", dict(relation="min_gap", target="each_other", threshold_cm=SPACING_DEFAULT_CM)),
    ("Mugs should be 2 inches from each other", dict(relation="min_gap", target="each_other", threshold_cm=5.08)),
    ("Keep cups within 20 cm of one another", dict(relation="max_gap", target="each_other", threshold_cm=20.0)),
    ("Group the mugs together", dict(relation="max_gap", target="each_other", threshold_cm=GROUP_DEFAULT_CM)),
    ("Keep all beverages clustered", dict(relation="max_gap", target="each_other", subject=DRINKS)),
    ("Line up the mugs in a row", dict(relation="align", axis="row", threshold_cm=2.0)),
    ("Align cups in a column within 1 cm", dict(relation="align", axis="column", threshold_cm=1.0)),
    # severities
    ("CRITICAL: keep mugs 6 in from laptops", dict(severity="critical", threshold_cm=15.24)),
    ("warning - keep mugs 6 in from laptops", dict(severity="warning")),
    ("[info] keep mugs 6 in from laptops", dict(severity="info")),
    ("Mugs must be at least 6 inches from laptops", dict(severity="critical")),
    ("Ideally keep mugs 6 inches from laptops", dict(severity="info")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "want"), PARAPHRASES, ids=[t for t, _ in PARAPHRASES])
def test_paraphrases(text: str, want: dict[str, Any]) -> None:
    check(parse(text), **want)


NONSENSE = [
    "purple monkey dishwasher",
    "make it nice",
    "keep mugs 6 from laptops",  # no unit
    "Keep mugs a few inches from laptops",  # vague
    "Keep mugs at least 10 cm and at most 30 cm from the laptop",  # two readings
    "Keep mugs between 10 cm and 30 cm from the laptop",
    "keep mugs within the laptop",
    "mugs",
    "!!!",
    "Keep the vibes 6 inches away",
]


@pytest.mark.parametrize("text", NONSENSE)
def test_unreadable_rules_raise_with_suggestions(text: str) -> None:
    with pytest.raises(RuleError) as exc:
        parse(text)
    err = exc.value
    assert err.code == "rule_not_understood"
    assert len(err.details["suggestions"]) == 3 and all(
        isinstance(s, str) for s in err.details["suggestions"]
    )
    assert err.details["schema"]["title"] == "Rule"
    assert "structured" in err.hint or "unit" in err.hint or "rule" in err.hint.lower()


def test_suggestions_are_nearest() -> None:
    with pytest.raises(RuleError) as exc:
        # one-letter typos are corrected now (and noted); this one is too far from any word
        parse("Keep mugs at least 6 inches awaaaay from laptopzzz")
    assert exc.value.details["suggestions"][0] == "Keep mugs at least 6 inches away from laptops"


def test_too_long_refused_early() -> None:
    with pytest.raises(RuleError) as exc:
        parse("Keep mugs away from laptops " * 40)
    assert exc.value.code == "rule_too_long"


def test_rule_round_trips_json_and_has_schema() -> None:
    rule = parse("CRITICAL: never put a drink within half a foot of a laptop")
    again = Rule.model_validate_json(rule.model_dump_json())
    assert again == rule
    schema = Rule.model_json_schema()
    assert "relation" in schema["properties"] and "threshold_cm" in schema["properties"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_grammar_never_crashes(text: str) -> None:
    try:
        rule = parse(text)
    except MugposError:
        return
    assert isinstance(rule, Rule)


words = st.sampled_from(
    [
        "keep",
        "mug",
        "mugs",
        "cup",
        "drinks",
        "laptop",
        "laptops",
        "keyboard",
        "edge",
        "table",
        "desk",
        "at",
        "least",
        "most",
        "within",
        "never",
        "not",
        "no",
        "don't",
        "near",
        "away",
        "from",
        "of",
        "the",
        "a",
        "6",
        "inches",
        "cm",
        "half",
        "foot",
        "and",
        "left",
        "right",
        "front",
        "behind",
        "each",
        "other",
        "together",
        "group",
        "line",
        "up",
        "row",
        "on",
        "more",
        "than",
        "less",
        "closer",
        "further",
        "apart",
        "3",
        "twelve",
        "coasters",
        "documents",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(words, max_size=14).map(" ".join))
def test_grammar_never_crashes_on_rule_like_word_salad(text: str) -> None:
    try:
        rule = parse(text)
    except MugposError:
        return
    assert rule.interpretation
