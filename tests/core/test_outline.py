"""A table's outline (a segmenting detector's mask): its sides as lines on the plane, turn and all."""

from __future__ import annotations

import math

import numpy as np
from test_plane import H, W, shoot

from mugpos.scene.boxes import TABLE_BORDER_FRAC, table_sides
from mugpos.scene.camera import focal_from_35mm, project
from mugpos.scene.measure import measure_desk
from mugpos.scene.sides import image_sides, rectangle_sides


def test_the_sides_of_an_outline_are_its_stretches_off_the_frame() -> None:
    # A table top cut by the photo's bottom and left border, with a small notch in its back side
    # (a mask bitten by something standing in front of it).
    outline = [
        (0.0, 700.0),  # where the left side leaves the frame
        (300.0, 300.0),  # back left corner
        (800.0, 300.0),
        (820.0, 320.0),  # the notch: too short to be a side
        (840.0, 300.0),
        (1300.0, 300.0),  # back right corner
        (1500.0, 1200.0),  # the right side meets the bottom of the frame
        (0.0, 1200.0),  # along the bottom and up the left border: the frame, not the table
    ]
    sides = image_sides(outline, W, H, TABLE_BORDER_FRAC)
    got = sorted((tuple(np.round(s.start)), tuple(np.round(s.end))) for s in sides)
    assert got == sorted(
        [
            ((0.0, 700.0), (300.0, 300.0)),
            ((300.0, 300.0), (1300.0, 300.0)),  # the notch is within the simplification's reach
            ((1300.0, 300.0), (1500.0, 1200.0)),
        ]
    ), got


CAM_H = 75.0


def _turned_table(elev: float, turn_deg: float) -> tuple[list[float], list[tuple[float, float]], np.ndarray]:
    """A 100 x 60 cm table turned `turn_deg` on the plane, seen whole: its box, outline and corners."""
    f = focal_from_35mm(27.0, W, H)
    c, s = math.cos(math.radians(turn_deg)), math.sin(math.radians(turn_deg))
    half = np.array([[-50, -30], [50, -30], [50, 30], [-50, 30]], float)
    corners = half @ np.array([[c, s], [-s, c]]) + np.array([0.0, 95.0])
    u, v, _ = project(corners[:, 0], corners[:, 1], 0.0, math.radians(elev), CAM_H, f, W / 2, H / 2)
    assert (u > 0).all() and (u < W).all() and (v > 0).all() and (v < H).all()
    box = [float(u.min()), float(v.min()), float(u.max()), float(v.max())]
    return box, [(float(a), float(b)) for a, b in zip(u, v, strict=True)], corners


def test_a_turned_table_is_measured_along_its_outline() -> None:
    # Turned 8 degrees, the table's left side runs slanted; a mug near its back-left corner is
    # 6 cm from it. A box shows the side only where the box touches it (its front-left corner)
    # and must allow any turn; the outline shows the side itself.
    elev, turn = 50.0, 8.0
    box, outline, corners = _turned_table(elev, turn)
    objs = [
        ("laptop-1", "laptop", 5.0, 105.0),
        ("keyboard-1", "keyboard", 0.0, 80.0),
        ("cup-2", "cup", 32.0, 82.0),
    ]
    left_side = corners[3] - corners[0]  # front-left to back-left
    inward = np.array([left_side[1], -left_side[0]]) / np.hypot(*left_side)
    cup = corners[0] + 0.75 * left_side + (6.0 + 4.0) * inward  # 6 cm from the side, radius 4
    objs.append(("cup-1", "cup", float(cup[0]), float(cup[1])))
    table = {"id": "table-1", "label": "dining table", "box": box}
    with_box = measure_desk(shoot(objs, elev, CAM_H, more=[table]))
    with_outline = measure_desk(shoot(objs, elev, CAM_H, more=[{**table, "outline": outline}]))
    lines = with_outline.surfaces["table-1"].lines
    assert set(lines) == {"left", "right", "front", "back"}
    # the side's direction on the plane, from the best fit: the turn itself, to a degree or so
    n = lines["left"].normal[0]
    assert abs(math.degrees(math.atan2(n[1], n[0])) - turn) < 2.0, n
    got = with_outline.edge_distance("cup-1", "left").measured
    assert got.value_cm is not None and abs(got.value_cm - 6.0) < 1.5, got
    assert got.lo_cm is not None and got.hi_cm is not None and got.lo_cm <= 6.0 <= got.hi_cm
    boxed = with_box.edge_distance("cup-1", "left").measured
    assert boxed.lo_cm is not None and boxed.hi_cm is not None
    assert got.hi_cm - got.lo_cm < 0.8 * (boxed.hi_cm - boxed.lo_cm), (got, boxed)
    # The outline stands on the scene as given, and the surface says each side is seen.
    assert all(e.seen for e in with_outline.surface_of("cup-1").edges.values())


def test_a_rectangle_s_sides_tell_the_camera_how_it_looks_down() -> None:
    # Opposite sides parallel and adjacent ones square on the plane: only the true camera's
    # elevation reads the outline so, and the boxes alone leave it loose.
    elev, turn = 50.0, 8.0
    box, outline, _ = _turned_table(elev, turn)
    objs = [("laptop-1", "laptop", 5.0, 105.0), ("cup-1", "cup", -30.0, 90.0), ("cup-2", "cup", 32.0, 82.0)]
    table = {"id": "table-1", "label": "dining table", "box": box}
    boxes_only = measure_desk(shoot(objs, elev, CAM_H, more=[table])).fit.plane
    outlined = measure_desk(shoot(objs, elev, CAM_H, more=[{**table, "outline": outline}])).fit.plane
    assert boxes_only is not None and outlined is not None
    e = outlined.elevation_deg
    assert abs(e.value - elev) < max(3.0, 2 * e.sigma), e
    assert e.sigma < 0.8 * boxes_only.elevation_deg.sigma, (e, boxes_only.elevation_deg)  # 7.1 against 10.3


def test_a_desk_turned_30_degrees_keeps_its_sides_apart() -> None:
    # Turned 30 degrees and seen from 35, the table's left side runs more across the picture than
    # up, like its front: read from the picture alone, the two would be parallel, and the camera
    # that makes them so looks down at 70 degrees (it did, 70 +- 14). Along the outline they meet
    # at a corner, so they are square, whatever the turn.
    elev = 35.0
    box, outline, _ = _turned_table(elev, 30.0)
    objs = [("laptop-1", "laptop", 5.0, 105.0), ("cup-1", "cup", -30.0, 90.0), ("cup-2", "cup", 32.0, 82.0)]
    scene = shoot(
        objs, elev, CAM_H, more=[{"id": "table-1", "label": "dining table", "box": box, "outline": outline}]
    )
    sides = table_sides(scene)
    assert sides is not None and len(sides.ends) == 4
    # four sides in order round the table: neighbours square, opposites (0-2, 1-3) parallel
    assert sides.pairs.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert sides.square.tolist() == [True, False, True, True, False, True]
    d = sides.ends[:, 1] - sides.ends[:, 0]
    assert (np.abs(d[:, 1]) < np.abs(d[:, 0])).sum() >= 3, d  # the picture alone would misread them
    e = measure_desk(scene).fit.plane
    assert e is not None
    assert abs(e.elevation_deg.value - elev) < 3.0, e.elevation_deg


def test_a_desk_turned_45_degrees_keeps_four_sides() -> None:
    # At 45 degrees every side's normal is as much across as deep: named one by one, two sides
    # took one name and one was lost, and the mug beside it was measured to the far side
    # (25 cm, range 15-33, for a mug 8 cm from its side). Parallel sides are named together.
    elev = 50.0
    box, outline, corners = _turned_table(elev, 45.0)
    objs = [("laptop-1", "laptop", 5.0, 100.0)]
    middle = corners.mean(axis=0)
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        inward = np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a))
        inward = inward if np.dot(inward, middle - (a + b) / 2) > 0 else -inward
        mug = (a + b) / 2 + (8.0 + 4.1) * inward  # 8 cm from the side (radius 4.1, handle away)
        objs.append((f"cup-{k + 1}", "cup", float(mug[0]), float(mug[1])))
    table = {"id": "table-1", "label": "dining table", "box": box, "outline": outline}
    desk = measure_desk(shoot(objs, elev, CAM_H, more=[table]))
    assert len(desk.surfaces["table-1"].lines) == 4
    for k in range(4):
        near = [desk.edge_distance(f"cup-{k + 1}", e).measured for e in ("front", "right", "back", "left")]
        got = min(near, key=lambda m: m.value_cm if m.value_cm is not None else math.inf)
        assert got.value_cm is not None and abs(got.value_cm - 8.0) < 1.5, (k, got)
        assert got.lo_cm is not None and got.hi_cm is not None and got.lo_cm <= 8.0 <= got.hi_cm, (k, got)


def test_a_round_table_s_outline_has_no_sides() -> None:
    # An ellipse simplifies into chords; a distance to a chord is no distance to the edge.
    a = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    ellipse = [(800 + 500 * math.cos(t), 700 + 300 * math.sin(t)) for t in a]
    assert len(image_sides(ellipse, W, H, TABLE_BORDER_FRAC)) > 4
    assert rectangle_sides(ellipse, W, H, TABLE_BORDER_FRAC) == []


def test_the_picture_draws_a_segmented_table_along_its_outline() -> None:
    from PIL import Image

    from mugpos.engine.annotate import SURFACE, draw_analysis
    from mugpos.engine.pipeline import measure_scene

    box, outline, _ = _turned_table(50.0, 8.0)
    objs = [("laptop-1", "laptop", 5.0, 105.0), ("cup-1", "cup", -30.0, 90.0), ("cup-2", "cup", 32.0, 82.0)]
    scene = shoot(
        objs, 50.0, CAM_H, more=[{"id": "table-1", "label": "dining table", "box": box, "outline": outline}]
    )
    scene, _, _, mugs, _ = measure_scene(scene)
    img = draw_analysis(Image.new("RGB", (W, H), (90, 90, 90)), scene, mugs)
    (x0, y0), (x1, y1) = outline[0], outline[1]  # the front side, slanted by the turn
    for t in (0.3, 0.5, 0.7):
        assert img.getpixel((round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0)))) == SURFACE
