"""Each relation kind end to end: its phrasing, its measurement, the solver satisfying it, and the
picture drawing its line or zone. One hand-made top-down desk (10 px per cm) per kind."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from mugpos.engine.annotate import draw_suggestions
from mugpos.rules import relations
from mugpos.rules.evaluator import evaluate
from mugpos.rules.grammar import parse_rule
from mugpos.rules.solver import solve
from mugpos.scene.model import Scale, Scene

TABLE = ("table-1", "dining table", (100, 100, 1500, 950))
LAPTOP = ("laptop-1", "laptop", (600, 350, 1000, 650))
KEYBOARD = ("keyboard-1", "keyboard", (600, 700, 1000, 800))

# kind, rule text, objects (besides the table), expected relation, guide kind drawn (or None)
CASES: list[tuple[str, str, list[tuple[str, str, tuple[float, ...]]], str, str | None]] = [
    ("min_gap", "Keep mugs at least 6 inches away from laptops",
     [LAPTOP, ("cup-1", "cup", (1020, 400, 1100, 480))], "min_gap", "zone"),
    ("max_gap", "Keep mugs within 10 cm of the keyboard",
     [KEYBOARD, ("cup-1", "cup", (1300, 300, 1380, 380))], "max_gap", "zone"),
    ("each_other", "Keep mugs at least 10 cm apart",
     [("cup-1", "cup", (700, 400, 780, 480)), ("cup-2", "cup", (800, 400, 880, 480))], "min_gap", "zone"),
    ("edge", "Keep mugs at least 10 cm from the front edge",
     [("cup-1", "cup", (700, 860, 780, 940))], "edge_distance", "line"),
    ("side", "Keep mugs on the left half of the table",
     [("cup-1", "cup", (1000, 400, 1080, 480))], "side", "line"),
    ("relative", "Put the mug behind the laptop",
     [LAPTOP, ("cup-1", "cup", (1100, 700, 1180, 780))], "relative", "line"),
    ("align", "Line up the mugs in a row within 1 cm",
     [("cup-1", "cup", (300, 300, 380, 380)), ("cup-2", "cup", (700, 330, 780, 410)),
      ("cup-3", "cup", (1100, 500, 1180, 580))], "align", "line"),
]  # fmt: skip


def scene_of(objs: list[tuple[str, str, tuple[float, ...]]]) -> Scene:
    return Scene.model_validate(
        {"image": {"width": 1600, "height": 1000}, "px_per_cm": 10.0,
         "objects": [{"id": i, "label": lab, "box": list(b)} for i, lab, b in objs]}
    )  # fmt: skip


SCALE = Scale(px_per_cm=10.0, source="given")


@pytest.mark.parametrize(("kind", "text", "objs", "relation", "guide"), CASES, ids=[c[0] for c in CASES])
def test_relation_end_to_end(kind: str, text: str, objs: list[Any], relation: str, guide: str | None) -> None:
    rule = parse_rule(text, max_chars=500)
    assert rule.relation == relation and relation in relations.BY_KIND  # phrasing -> one registered kind
    scene = scene_of([TABLE, *objs])
    [before] = evaluate([rule], scene, SCALE)
    assert before.status == "violated", before  # measured on the plane
    out = solve([rule], scene, SCALE)
    assert out.suggestions and not any(s.still_violated for s in out.suggestions), out
    moved = {s.object_id: s.to_box for s in out.suggestions}
    after_scene = scene_of([TABLE, *[(i, lab, moved.get(i, b)) for i, lab, b in objs]])
    [after] = evaluate([rule], after_scene, SCALE)
    assert after.status == "satisfied", (after, out.suggestions)  # the solver satisfied it
    s = out.suggestions[0]
    assert any(g.kind == "target" for g in s.guides)
    if guide is not None:
        assert any(g.kind == guide for g in s.guides), s.guides  # the rule's line or zone
    img = Image.new("RGB", (1600, 1000), (128, 128, 128))
    drawn = draw_suggestions(img, scene, [x.model_dump(mode="json") for x in out.suggestions])
    assert drawn.size == img.size
    t = s.to_box
    assert drawn.getpixel((int((t[0] + t[2]) / 2), int((t[1] + t[3]) / 2))) != (128, 128, 128)


def test_on_surface_keeps_the_whole_mug_on_the_table() -> None:
    rule = parse_rule("Keep mugs at least 5 cm from the edges", max_chars=500)
    scene = scene_of([TABLE, ("cup-1", "cup", (1460, 500, 1540, 580))])  # hanging over the right edge
    out = solve([rule, parse_rule("Keep mugs on the table", max_chars=500)], scene, SCALE)
    [s] = out.suggestions
    assert s.to_box[2] <= 1500 - 50 + 1e-6 and s.to_box[0] >= 100
    assert "edge" in s.instruction


def test_count_is_a_conflict_not_a_move() -> None:
    rule = parse_rule("No more than 1 mug on the desk", max_chars=500)
    scene = scene_of([TABLE, ("cup-1", "cup", (300, 300, 380, 380)), ("cup-2", "cup", (700, 300, 780, 380))])
    out = solve([rule], scene, SCALE)
    assert not out.suggestions and "count" in out.conflicts[0].message


def test_every_kind_has_one_module_with_all_parts() -> None:
    for kind, mod in relations.BY_KIND.items():
        for part in ("GRAMMAR", "READERS", "describe", "measure", "message", "violated", "lines", "guides"):
            assert hasattr(mod, part), (kind, part)
