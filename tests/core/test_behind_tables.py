"""Things behind the table (a wall rack of cups, a shelf, people standing further back) are not on
it: no footprint on the table plane, no part in the plane fit, no move "2 m forward" off the wall,
and their verdicts say why they are uncertain.

The photo test uses coco-cups 000000000113: nine cups hang on a rack on the wall behind a table
whose one "cup" (a sugar pot) stands beside a cake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mugpos.rules.evaluator import evaluate
from mugpos.rules.grammar import parse_rule
from mugpos.rules.solver import solve
from mugpos.scene.geometry import behind_the_tables
from mugpos.scene.measure import OFF_BEHIND, measure_desk
from mugpos.scene.model import Scale, Scene

DATA = Path(os.environ.get("MUGPOS_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
RACK = DATA / "coco-cups" / "scenes" / "000000000113.json"


def scene(*objects: tuple[str, str, tuple[float, float, float, float]], h: int = 1000) -> Scene:
    return Scene.model_validate(
        {"image": {"width": 1600, "height": h},
         "objects": [{"id": i, "label": lab, "box": list(b)} for i, lab, b in objects]}
    )  # fmt: skip


TABLE = ("table-1", "dining table", (100.0, 500.0, 1500.0, 1000.0))
ON_TABLE = ("cup-1", "cup", (700.0, 600.0, 780.0, 700.0))


@pytest.mark.parametrize(
    ("objects", "who", "behind"),
    [
        ((TABLE, ON_TABLE, ("cup-2", "cup", (300.0, 200.0, 360.0, 260.0))), "cup-2", True),
        ((TABLE, ON_TABLE), "cup-1", False),
        # bottom just above the top edge, within 2 % of the height: standing at the back edge
        ((TABLE, ON_TABLE, ("cup-2", "cup", (300.0, 430.0, 360.0, 490.0))), "cup-2", False),
        # a table that holds nothing (far away, or misdetected) says nothing about what is behind it
        ((("table-1", "dining table", (100.0, 800.0, 300.0, 820.0)), ("cup-2", "cup", (300.0, 200.0, 360.0, 260.0))),
         "cup-2", False),
        # the frame cuts the table's top: nothing can be behind it in this photo
        ((("table-1", "dining table", (100.0, 0.0, 1500.0, 1000.0)), ON_TABLE), "cup-1", False),
        ((ON_TABLE,), "cup-1", False),  # no table at all
    ],
)  # fmt: skip
def test_behind_the_tables(objects: tuple[Any, ...], who: str, behind: bool) -> None:
    s = scene(*objects)
    obj = s.get(who)
    assert obj is not None
    assert behind_the_tables(s, obj) is behind


@pytest.mark.skipif(not RACK.exists(), reason="coco-cups scenes not found (set MUGPOS_TEST_DATA)")
def test_cups_on_a_wall_rack_are_not_on_the_table() -> None:
    s = Scene.model_validate(json.loads(RACK.read_text()))
    rack = [o.id for o in s.mugs if o.id != "cup-1"]
    assert len(rack) == 9
    desk = measure_desk(s)
    assert desk.has_footprint("cup-1")
    for cup in rack:
        assert cup is not None
        assert not desk.has_footprint(cup) and cup not in desk.fit.ids and desk.why_off(cup) == OFF_BEHIND

    scale = Scale(px_per_cm=10.0, source="assumed")
    rules = [parse_rule("keep mugs in the right half of the table", max_chars=500)]
    [verdict] = evaluate(rules, s, scale, desk=desk)
    by_id = {m.object_id: m for m in verdict.measurements}
    assert by_id["cup-1"].status == "violated"  # the sugar pot stands on the left of the table
    assert all(by_id[c].status == "uncertain" and "behind the table" in (by_id[c].note or "") for c in rack)
    moved = {m.object_id for m in solve(rules, s, scale, desk=desk).suggestions}
    assert moved <= {"cup-1"}, moved  # nothing is carried off the wall
