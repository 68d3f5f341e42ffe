"""Pure geometry over boxes: gaps, overlaps, the supporting surface, zones and relations.

Conventions: pixels, origin top-left, y down. The camera looks at the surface from its front edge,
so the top of the image is the *back* of the surface and the bottom is the *front*.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Detection, Scale, Scene

ROWS = ("back", "middle", "front")
COLS = ("left", "center", "right")
ZONES: tuple[str, ...] = tuple(
    "center" if (r, c) == ("middle", "center") else f"{r}-{c}" for r in ROWS for c in COLS
)


def box_gap(a: Box, b: Box) -> float:
    """Shortest distance between two rectangles in pixels; 0 when they touch or overlap."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def intersection(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def area(b: Box) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def center(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def contains_point(b: Box, x: float, y: float) -> bool:
    return b[0] <= x <= b[2] and b[1] <= y <= b[3]


class Surface(BaseModel):
    """What the mugs stand on: a detected table, else the whole image."""

    id: str | None = Field(None, description="object id of the table, None for the image")
    kind: Literal["table", "image"]
    box: Box


def image_surface(scene: Scene) -> Surface:
    return Surface(id=None, kind="image", box=(0.0, 0.0, float(scene.image.width), float(scene.image.height)))


def surface_for(scene: Scene, obj: Detection | None = None) -> Surface:
    """The table under `obj` (its bottom-centre inside), else the table that holds most mugs.

    Ties go to the larger table. Without any table the image itself is the surface.
    """
    tables = [o for o in scene.objects if o.label in SURFACE_LABELS]
    if obj is not None:
        foot = (obj.center[0], obj.box[3])
        under = [t for t in tables if contains_point(t.box, *foot)]
        if under:
            best = max(under, key=lambda t: area(t.box))
            return Surface(id=best.id, kind="table", box=best.box)
    if tables:
        mugs = scene.mugs

        def holds(t: Detection) -> tuple[int, float]:
            return (sum(contains_point(t.box, m.center[0], m.box[3]) for m in mugs), area(t.box))

        best = max(tables, key=holds)
        if obj is None or holds(best)[0] > 0:
            return Surface(id=best.id, kind="table", box=best.box)
    return image_surface(scene)


BEHIND_MARGIN_FRAC = 0.02  # of the photo's height: a box bottom this far above a table's top edge


def behind_the_tables(scene: Scene, obj: Detection) -> bool:
    """Whether `obj` stands behind every table the photo shows, so on none of them.

    Its box bottom (where it touches what holds it) is above the top edge of every table that holds
    something: it is on a shelf, a wall rack, a counter further back, or a person standing behind.
    Placing it on the plane would put it metres behind the table, and a move would bring it from
    the wall "2 m forward". A table that holds nothing (a far or misdetected one) does not count;
    a table whose top the frame cuts hides nothing behind it.
    """
    if obj.label in SURFACE_LABELS:
        return False
    tables = [o for o in scene.objects if o.label in SURFACE_LABELS]
    others = [o for o in scene.objects if o.label not in SURFACE_LABELS]
    holding = [t for t in tables if any(contains_point(t.box, o.center[0], o.box[3]) for o in others)]
    if not holding:
        return False
    margin = BEHIND_MARGIN_FRAC * scene.image.height
    return all(obj.box[3] < t.box[1] - margin for t in holding)


def normalised(point: tuple[float, float], surface: Box) -> tuple[float, float]:
    """Point in surface coordinates: (0, 0) back-left, (1, 1) front-right."""
    w = max(surface[2] - surface[0], 1e-9)
    h = max(surface[3] - surface[1], 1e-9)
    return ((point[0] - surface[0]) / w, (point[1] - surface[1]) / h)


def zone_of(point: tuple[float, float], surface: Box) -> str:
    """One of nine zones, back-left ... center ... front-right."""
    nx, ny = normalised(point, surface)
    col = COLS[min(max(int(nx * 3), 0), 2)]
    row = ROWS[min(max(int(ny * 3), 0), 2)]
    return "center" if (row, col) == ("middle", "center") else f"{row}-{col}"


class EdgeDistances(BaseModel):
    """Centimetres from the object's footprint to each edge of its table (negative: past the edge).

    None for an edge the photo does not show (cut by the frame, or no table): a distance to it would
    be a distance to the photo's border.
    """

    left: float | None
    right: float | None
    back: float | None
    front: float | None

    @property
    def nearest(self) -> float | None:
        known = [v for v in (self.left, self.right, self.back, self.front) if v is not None]
        return min(known) if known else None


def edge_distances_px(b: Box, surface: Box) -> tuple[float, float, float, float]:
    return (b[0] - surface[0], surface[2] - b[2], b[1] - surface[1], surface[3] - b[3])


def edge_distances(b: Box, surface: Box, scale: Scale) -> EdgeDistances:
    left, right, back, front = (round(scale.cm(v), 2) for v in edge_distances_px(b, surface))
    return EdgeDistances(left=left, right=right, back=back, front=front)


class MugPosition(BaseModel):
    object_id: str
    box: Box
    center_px: tuple[float, float]
    normalized: tuple[float, float] = Field(description="x, y on the surface: 0,0 back-left; 1,1 front-right")
    zone: str
    surface_id: str | None
    edges_cm: EdgeDistances
    size_cm: tuple[float, float] = Field(description="footprint width x depth on the table plane, cm")
    footprint_cm: tuple[float, float, float, float] | None = Field(
        None, description="[x1, y1, x2, y2] on the table plane, cm (x right, y away from the camera)"
    )


def mug_position(scene: Scene, mug: Detection, scale: Scale) -> MugPosition:
    surface = surface_for(scene, mug)
    c = mug.center
    nx, ny = normalised(c, surface.box)
    assert mug.id is not None
    return MugPosition(
        object_id=mug.id,
        box=mug.box,
        center_px=(round(c[0], 1), round(c[1], 1)),
        normalized=(round(nx, 4), round(ny, 4)),
        zone=zone_of(c, surface.box),
        surface_id=surface.id,
        edges_cm=edge_distances(mug.box, surface.box, scale),
        size_cm=(round(scale.cm(mug.width), 2), round(scale.cm(mug.height), 2)),
    )


Direction = Literal["left_of", "right_of", "behind", "in_front_of", "overlaps"]


def directions(a: Box, b: Box) -> list[Direction]:
    """Where `a` is relative to `b`: left/right by x, behind/in front by y (image up = back).

    `a` is left of `b` when its centre lies left of `b`'s left quarter line (likewise for the other
    sides), so a mug standing beside a laptop is "right of" it, not also "behind" it.
    """
    (ax, ay) = center(a)
    bw, bh = b[2] - b[0], b[3] - b[1]
    out: list[Direction] = []
    if ax < b[0] + 0.25 * bw:
        out.append("left_of")
    elif ax > b[2] - 0.25 * bw:
        out.append("right_of")
    if ay < b[1] + 0.25 * bh:
        out.append("behind")
    elif ay > b[3] - 0.25 * bh:
        out.append("in_front_of")
    if intersection(a, b) > 0:
        out.append("overlaps")
    return out


class Relation(BaseModel):
    subject_id: str
    object_id: str
    object_label: str
    gap_px: float
    gap_cm: float | None = Field(description="footprint to footprint on the table plane")
    gap_range_cm: tuple[float | None, float | None] | None = None
    directions: list[Direction]


def mug_relations(scene: Scene, scale: Scale, *, max_per_mug: int = 12) -> list[Relation]:
    """Each mug against every other object except surfaces, nearest first, capped per mug."""
    out: list[Relation] = []
    for mug in scene.mugs:
        rels = []
        for other in scene.objects:
            if other is mug or other.label in SURFACE_LABELS:
                continue
            gap = box_gap(mug.box, other.box)
            assert mug.id is not None and other.id is not None
            rels.append(
                Relation(
                    subject_id=mug.id,
                    object_id=other.id,
                    object_label=other.label,
                    gap_px=round(gap, 1),
                    gap_cm=round(scale.cm(gap), 2),
                    directions=directions(mug.box, other.box),
                )
            )
        rels.sort(key=lambda r: r.gap_px)
        out.extend(rels[:max_per_mug])
    return out
