"""Geometry on hand-made scenes, with expected values worked out by hand."""

from __future__ import annotations

import json
import math

import pytest

from mugpos.errors import SceneError  # noqa: F401  (import keeps the error module honest)
from mugpos.scene import geometry as g
from mugpos.scene.model import Scale, Scene

DESK = {
    "image": {"width": 1600, "height": 1000},
    "px_per_cm": 10.0,
    "objects": [
        {"label": "dining table", "box": [100, 200, 1500, 950]},
        {"id": "cup-1", "label": "cup", "box": [1020, 400, 1100, 480], "confidence": 0.91},
        {"id": "laptop-1", "label": "laptop", "box": [600, 350, 1000, 650]},
        {"label": "Cup", "box": [200, 800, 280, 880]},
    ],
}


def scene() -> Scene:
    return Scene.model_validate(DESK)


def test_ids_assigned_in_order_and_labels_normalised() -> None:
    s = scene()
    assert [o.id for o in s.objects] == ["dining-table-1", "cup-1", "laptop-1", "cup-2"]
    assert s.objects[3].label == "cup" and s.objects[3].confidence == 1.0
    assert json.loads(s.model_dump_json())["objects"][1]["box"] == [1020.0, 400.0, 1100.0, 480.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"image": {"width": 10, "height": 10}, "objects": [{"label": "cup", "box": [5, 5, 2, 8]}]},
        {"image": {"width": 10, "height": 10}, "objects": [{"label": "cup", "box": [0, 0, float("nan"), 8]}]},
        {"image": {"width": 0, "height": 10}, "objects": []},
        {
            "image": {"width": 10, "height": 10},
            "objects": [
                {"id": "a", "label": "cup", "box": [0, 0, 1, 1]},
                {"id": "a", "label": "cup", "box": [0, 0, 1, 1]},
            ],
        },
        {"image": {"width": 10, "height": 10}, "px_per_cm": -1, "objects": []},
    ],
)
def test_invalid_scenes_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Scene.model_validate(bad)


def test_box_gap_cases() -> None:
    assert g.box_gap((0, 0, 10, 10), (20, 0, 30, 10)) == 10  # side by side
    assert g.box_gap((0, 0, 10, 10), (5, 5, 15, 15)) == 0  # overlap
    assert g.box_gap((0, 0, 10, 10), (13, 14, 20, 20)) == pytest.approx(5.0)  # diagonal 3-4-5
    assert g.box_gap((0, 0, 10, 10), (10, 0, 20, 10)) == 0  # touching


def test_iou() -> None:
    assert g.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1
    assert g.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert g.iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0


def test_surface_is_the_table_under_the_mug_else_the_image() -> None:
    s = scene()
    cup = s.get("cup-1")
    assert cup is not None
    surf = g.surface_for(s, cup)
    assert surf.kind == "table" and surf.id == "dining-table-1"
    no_table = Scene.model_validate({**DESK, "objects": DESK["objects"][1:]})
    assert g.surface_for(no_table, no_table.mugs[0]).kind == "image"


def test_zones_cover_the_nine_cells() -> None:
    surf = (0.0, 0.0, 300.0, 300.0)
    assert g.zone_of((10, 10), surf) == "back-left"
    assert g.zone_of((150, 150), surf) == "center"
    assert g.zone_of((290, 290), surf) == "front-right"
    assert g.zone_of((150, 290), surf) == "front-center"
    assert g.zone_of((10, 150), surf) == "middle-left"
    assert set(g.ZONES) == {
        g.zone_of(((i + 0.5) * 100, (j + 0.5) * 100), surf) for i in range(3) for j in range(3)
    }


def test_mug_position_in_cm_from_the_table_edges() -> None:
    s = scene()
    cup = s.get("cup-1")
    assert cup is not None
    pos = g.mug_position(s, cup, Scale(px_per_cm=10.0, source="given"))
    # table [100,200,1500,950], cup [1020,400,1100,480] at 10 px/cm
    assert pos.edges_cm.left == pytest.approx(92.0)
    assert pos.edges_cm.right == pytest.approx(40.0)
    assert pos.edges_cm.back == pytest.approx(20.0)
    assert pos.edges_cm.front == pytest.approx(47.0)
    assert pos.size_cm == (8.0, 8.0)
    assert pos.zone == "back-right"  # x 0.67 of the table (right third), y 0.27 (back third)
    assert pos.normalized == pytest.approx(((1060 - 100) / 1400, (440 - 200) / 750), abs=1e-4)


def test_relations_gap_and_directions() -> None:
    s = scene()
    rels = g.mug_relations(s, Scale(px_per_cm=10.0, source="given"))
    r = next(r for r in rels if r.subject_id == "cup-1" and r.object_id == "laptop-1")
    assert r.gap_cm == pytest.approx(2.0)  # 1020 - 1000 px
    assert "right_of" in r.directions and "behind" not in r.directions
    r2 = next(r for r in rels if r.subject_id == "cup-2" and r.object_id == "laptop-1")
    assert {"left_of", "in_front_of"} <= set(r2.directions)
    assert r2.gap_cm == pytest.approx(math.hypot(600 - 280, 800 - 650) / 10, abs=0.01)
    assert all(r.object_label != "dining table" for r in rels)


def test_relations_give_cm_only_to_things_that_stand_on_a_table() -> None:
    """coco 164 (a kitchen, no table): 'cup-1 -> chair-1: 449 cm' put a chair on the floor on the
    table's plane. Relations to a chair or a person keep pixels and directions, and no cm."""
    from mugpos.engine.pipeline import measure_scene

    scene = Scene.model_validate(
        {
            "image": {"width": 640, "height": 480},
            "objects": [
                {"id": "cup-1", "label": "cup", "box": [300, 250, 350, 310]},
                {"id": "laptop-1", "label": "laptop", "box": [380, 200, 560, 330]},
                {"id": "chair-1", "label": "chair", "box": [40, 280, 200, 480]},
                {"id": "dining-table-1", "label": "dining table", "box": [0, 180, 640, 480]},
            ],
        }
    )
    _scene, _scale, _surface, _mugs, relations = measure_scene(scene)
    by = {r.object_id: r for r in relations}
    assert by["laptop-1"].gap_cm is not None and by["laptop-1"].gap_cm > 0
    assert by["chair-1"].gap_cm is None and by["chair-1"].gap_px > 0 and by["chair-1"].directions
