"""Mug positions and relations as the analysis reports them, measured on the table plane.

The pixel-only versions in `mugpos.scene.geometry` remain for pictures; these take a measured `Desk`
so every centimetre in an analysis comes from the plane (footprints, seen edges) and not from one
scale for the whole photo.
"""

from __future__ import annotations

from mugpos.scene.geometry import (
    EdgeDistances,
    MugPosition,
    Relation,
    box_gap,
    directions,
    normalised,
    surface_for,
    zone_of,
)
from mugpos.scene.labels import SURFACE_LABELS, TABLETOP_LABELS
from mugpos.scene.measure import EDGE_NAMES, Desk
from mugpos.scene.model import Detection, Scale


def mug_position(desk: Desk, mug: Detection) -> MugPosition:
    """Where one mug stands: in the photo (zone, normalised) and on the plane (cm to each seen edge)."""
    surface = surface_for(desk.scene, mug)
    c = mug.center
    nx, ny = normalised(c, surface.box)
    assert mug.id is not None
    fp = desk.footprint(mug.id)
    edges: dict[str, float | None] = dict.fromkeys(EDGE_NAMES)
    if fp is not None:
        for e in EDGE_NAMES:
            d = desk.edge_distance(mug.id, e)
            edges[e] = d.measured.value if d.seen else None
    rect = fp.rect if fp is not None else None
    size = (round(rect[2] - rect[0], 2), round(rect[3] - rect[1], 2)) if rect else (0.0, 0.0)
    return MugPosition(
        object_id=mug.id,
        box=mug.box,
        center_px=(round(c[0], 1), round(c[1], 1)),
        normalized=(round(nx, 4), round(ny, 4)),
        zone=zone_of(c, surface.box),
        surface_id=surface.id,
        edges_cm=EdgeDistances(**edges),  # type: ignore[arg-type]
        size_cm=size,
        footprint_cm=rect,
    )


def mug_relations(desk: Desk, *, max_per_mug: int = 12) -> list[Relation]:
    """Each mug against every other object except surfaces, nearest on the plane first, capped per mug;
    in cm only to things that stand on tables (to a chair or a person: pixels and directions)."""
    scene = desk.scene
    out: list[Relation] = []
    for mug in scene.mugs:
        rels = []
        for other in scene.objects:
            if other is mug or other.label in SURFACE_LABELS:
                continue
            assert mug.id is not None and other.id is not None
            # cm only between things that stand on a table: a chair's or a person's box bottom is
            # on the floor, and its place on the table's plane would be a made-up number.
            both = (
                other.label in TABLETOP_LABELS and desk.has_footprint(mug.id) and desk.has_footprint(other.id)
            )
            g = desk.gap(mug.id, other.id) if both else None
            rels.append(
                Relation(
                    subject_id=mug.id,
                    object_id=other.id,
                    object_label=other.label,
                    gap_px=round(box_gap(mug.box, other.box), 1),
                    gap_cm=g.value if g else None,
                    gap_range_cm=g.range_cm if g else None,
                    directions=directions(mug.box, other.box),
                )
            )
        rels.sort(key=lambda r: (r.gap_cm is None, r.gap_cm or 0.0, r.gap_px))
        out.extend(rels[:max_per_mug])
    return out


def scale_of(desk: Desk) -> Scale:
    """The plane summed up as one scale (px per cm on the table where the mugs stand), for callers
    that want a single number; its source is the plane's."""
    plane = desk.fit.plane
    assert plane is not None
    ppc = plane.px_per_cm
    pct = 100.0 * ppc.sigma / ppc.value if ppc.value > 0 else 0.0
    src = plane.source
    return Scale(
        px_per_cm=ppc.value if ppc.value > 0 else 1.0,
        source="estimated" if src == "exif" else src,
        uncertainty_pct=round(pct, 1),
        references=list(plane.references),
        note=plane.note
        + (
            ""
            if plane.kind == "top_down"
            else f"; perspective: elevation {plane.elevation_deg.value:.0f} deg"
        ),
    )
