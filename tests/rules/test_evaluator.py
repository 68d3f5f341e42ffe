"""Verdicts on hand-made scenes at 10 px/cm, with every expected value computed by hand here."""

from __future__ import annotations

import math
from typing import Any

from mugpos.rules.evaluator import evaluate
from mugpos.rules.grammar import parse_rule
from mugpos.rules.model import Rule
from mugpos.scene.model import Scale

TABLE = ("table-1", "dining table", (100, 100, 1500, 950))


def one(text: str, scene, scale: Scale):  # type: ignore[no-untyped-def]
    [v] = evaluate([parse_rule(text, max_chars=500)], scene, scale)
    return v


def test_min_gap_laptop_violated_and_satisfied(scale: Scale, make_scene: Any) -> None:
    text = "Keep mugs at least 6 inches away from laptops"
    # gap is horizontal: 1020 - 1000 = 20 px = 2 cm
    near = make_scene(
        TABLE, ("cup-1", "cup", (1020, 400, 1100, 480)), ("laptop-1", "laptop", (600, 350, 1000, 650))
    )
    v = one(text, near, scale)
    assert v.status == "violated"
    [viol] = v.violations
    assert (viol.object_id, viol.other_id, viol.measured_cm, viol.required_cm) == (
        "cup-1",
        "laptop-1",
        2.0,
        15.24,
    )
    # diagonal gap: dx = 1120-1000 = 120, dy = 700-650 = 50 -> 130 px = 13 cm < 15.24
    diag = make_scene(
        TABLE, ("cup-1", "cup", (1120, 700, 1200, 780)), ("laptop-1", "laptop", (600, 350, 1000, 650))
    )
    v = one(text, diag, scale)
    assert v.status == "violated" and v.violations[0].measured_cm == 13.0
    far = make_scene(
        TABLE, ("cup-1", "cup", (1160, 400, 1240, 480)), ("laptop-1", "laptop", (600, 350, 1000, 650))
    )
    v = one(text, far, scale)
    assert v.status == "satisfied" and v.measurements[0].measured_cm == 16.0


def test_beverages_and_keyboards_pairs(scale: Scale, make_scene: Any) -> None:
    text = "Maintain a minimum distance of 8 inches between beverages and keyboards"
    scene = make_scene(
        TABLE,
        ("cup-1", "cup", (300, 300, 380, 380)),
        ("bottle-1", "bottle", (900, 300, 960, 480)),
        ("keyboard-1", "keyboard", (500, 300, 800, 400)),
    )
    v = one(text, scene, scale)
    # cup: 500-380 = 120 px = 12 cm; bottle: 900-800 = 100 px = 10 cm; both < 20.32
    got = {(x.object_id, x.measured_cm) for x in v.violations}
    assert got == {("cup-1", 12.0), ("bottle-1", 10.0)}
    assert all(x.required_cm == 20.32 for x in v.violations)


def test_edge_distance(scale: Scale, make_scene: Any) -> None:
    text = "Ensure drinks are no closer than 4 inches to the edge of the table"
    # cup right edge 1450 vs table 1500 -> 5 cm to the right edge
    scene = make_scene(TABLE, ("cup-1", "cup", (1370, 500, 1450, 580)))
    v = one(text, scene, scale)
    assert v.status == "violated"
    assert (v.violations[0].measured_cm, v.violations[0].required_cm, v.violations[0].other_id) == (
        5.0,
        10.16,
        "table-1",
    )
    ok = make_scene(TABLE, ("cup-1", "cup", (700, 500, 780, 580)))
    assert one(text, ok, scale).status == "satisfied"
    # no table: the photo's border is not a table edge (this used to say "violated, 2 cm from the
    # image border"); the rule cannot be judged and says why
    no_table = make_scene(("cup-1", "cup", (20, 500, 100, 580)))
    v = one(text, no_table, scale)
    assert v.status == "uncertain" and not v.violations
    assert "does not show" in (v.reason or "") and "no table" in (v.reason or "")


def test_right_side_of_workspace(scale: Scale, make_scene: Any) -> None:
    text = "Position mugs on the right side of the workspace"
    # table centre x = 800; the whole footprint must be in the right half (DESIGN "Rule verdicts"):
    # its left side 660 -> 14 cm to go (this said 10 cm when the rule looked at the centre)
    left = make_scene(TABLE, ("cup-1", "cup", (660, 500, 740, 580)))
    v = one(text, left, scale)
    assert v.status == "violated" and v.violations[0].measured_cm == 14.0
    right = make_scene(TABLE, ("cup-1", "cup", (900, 500, 980, 580)))
    assert one(text, right, scale).status == "satisfied"


def test_cluster_within_12_inches(scale: Scale, make_scene: Any) -> None:
    text = "Cluster mugs within 12 inches of each other for easy access"
    # gap 1000-400 = 600 px = 60 cm > 30.48
    apart = make_scene(
        TABLE, ("cup-1", "cup", (320, 500, 400, 580)), ("cup-2", "cup", (1000, 500, 1080, 580))
    )
    v = one(text, apart, scale)
    assert v.status == "violated" and v.violations[0].measured_cm == 60.0
    close = make_scene(TABLE, ("cup-1", "cup", (320, 500, 400, 580)), ("cup-2", "cup", (600, 500, 680, 580)))
    assert one(text, close, scale).status == "satisfied"
    alone = make_scene(TABLE, ("cup-1", "cup", (320, 500, 400, 580)))
    v = one(text, alone, scale)
    assert v.status == "not_applicable" and "fewer than two" in (v.reason or "")


def test_group_drinks_together_uses_default(scale: Scale, make_scene: Any) -> None:
    text = "Group all drinks together in the designated beverage area"
    scene = make_scene(
        TABLE, ("cup-1", "cup", (320, 500, 400, 580)), ("wine-glass-1", "wine glass", (1000, 500, 1050, 600))
    )
    v = one(text, scene, scale)
    assert (
        v.status == "violated"
        and v.violations[0].required_cm == 30.48
        and v.violations[0].measured_cm == 60.0
    )


def test_liquids_near_electronics_default_distance(scale: Scale, make_scene: Any) -> None:
    text = "Avoid placing liquids near electronic devices"
    # phone gap: 700-600 = 100 px = 10 cm < 15.24; mouse gap: 1200-600 = 600 px fine
    scene = make_scene(
        TABLE,
        ("cup-1", "cup", (520, 500, 600, 580)),
        ("cell-phone-1", "cell phone", (700, 500, 760, 620)),
        ("mouse-1", "mouse", (1200, 500, 1260, 560)),
    )
    v = one(text, scene, scale)
    assert [(x.other_id, x.measured_cm) for x in v.violations] == [("cell-phone-1", 10.0)]


def test_not_applicable_and_not_checkable_and_disabled(scale: Scale, make_scene: Any) -> None:
    scene = make_scene(TABLE, ("cup-1", "cup", (520, 500, 600, 580)))
    v = one("Keep mugs at least 6 inches away from laptops", scene, scale)
    assert v.status == "not_applicable" and "laptop" in (v.reason or "")
    v = one("Keep beverages away from paper documents", scene, scale)
    assert v.status == "not_checkable" and "paper" in (v.reason or "")
    empty = make_scene(TABLE, ("laptop-1", "laptop", (600, 350, 1000, 650)))
    assert one("Keep mugs at least 6 inches away from laptops", empty, scale).status == "not_applicable"
    off = parse_rule("Keep mugs on the table", max_chars=500).model_copy(update={"enabled": False})
    assert evaluate([off], scene, scale) == []


def test_relative_on_surface_count_align(scale: Scale, make_scene: Any) -> None:
    scene = make_scene(
        TABLE,
        ("cup-1", "cup", (300, 500, 380, 580)),
        ("cup-2", "cup", (1100, 540, 1180, 620)),
        ("cup-3", "cup", (1300, 960, 1380, 990)),  # foot below the table: not on it
        ("laptop-1", "laptop", (600, 350, 1000, 650)),
    )
    v = one("Put the mug to the right of the laptop", scene, scale)
    assert {x.object_id for x in v.violations} == {"cup-1"}
    v = one("Keep mugs on the table", scene, scale)
    assert [x.object_id for x in v.violations] == ["cup-3"]
    v = one("No more than 2 mugs on the desk", scene, scale)
    assert v.status == "violated" and [x.object_id for x in v.violations] == ["cup-3"]
    assert one("No more than 3 mugs on the desk", scene, scale).status == "satisfied"
    # centres y: 540, 580, 975 -> median 580; deviations 4 cm, 0, 39.5 cm; tolerance 2 cm
    v = one("Line up the mugs in a row", scene, scale)
    got = {x.object_id: x.measured_cm for x in v.violations}
    assert got == {"cup-1": 4.0, "cup-3": 39.5}


def test_spacing_between_mugs(scale: Scale, make_scene: Any) -> None:
    scene = make_scene(TABLE, ("cup-1", "cup", (300, 500, 380, 580)), ("cup-2", "cup", (410, 500, 490, 580)))
    v = one("Keep mugs at least 5 cm apart", scene, scale)
    assert v.status == "violated" and v.violations[0].measured_cm == 3.0


def test_structured_rule_evaluates(scale: Scale, make_scene: Any) -> None:
    rule = Rule.model_validate(
        {
            "subject": {"labels": ["cup"]},
            "target": {"labels": ["book"]},
            "relation": "max_gap",
            "threshold_cm": 5,
        }
    )
    assert rule.interpretation == "every cup <= 5 cm from the nearest book"
    scene = make_scene(
        TABLE, ("cup-1", "cup", (300, 500, 380, 580)), ("book-1", "book", (480, 500, 600, 580))
    )
    [v] = evaluate([rule], scene, scale)
    assert v.status == "violated" and math.isclose(v.violations[0].measured_cm or 0, 10.0)
