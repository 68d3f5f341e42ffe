"""The table plane as the solver sees it: best-fit footprints as plain rectangles, vectorised tests.

The solver judges thousands of candidate spots per mug, so it works on the best fit (row 0 of the
`Desk`'s samples) with numpy over all candidates at once; the evaluator then checks the chosen
spot with the full ranges. Candidates are the moved footprint's front-left corner (X, Y) in cm.
Each relation module supplies `violated(rule, ctx, X, Y)` (bool per candidate), `lines(rule, ctx)`
(x and y values where its boundary lies) and `guides(rule, ctx)` (what to draw) over this context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mugpos.rules.model import Rule, Selector
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import TableSurface

if TYPE_CHECKING:
    from mugpos.scene.measure import Desk

A = NDArray[np.float64]
B = NDArray[np.bool_]
EDGE_MARGIN_CM = 1.0  # a target keeps this far inside an edge the photo shows
NOT_ON_A_DESK = frozenset(
    {"person", "chair", "couch", "bed", "dining table", "toilet", "bench", "bicycle", "car", "motorcycle",
     "bus", "train", "truck", "boat", "refrigerator", "cat", "dog", "horse", "sheep", "cow", "bird",
     "elephant", "bear", "zebra", "giraffe", "potted plant", "suitcase"}
)  # fmt: skip
CLUSTER_CM = 30.0  # with no table: desk objects this close to the mug's region count as the desk
CLEAR_CM = 0.5  # and this far from every other footprint (boxes are not exact to the pixel)


@dataclass
class Ctx:
    """One mug being placed: its size, where everything else stands, the table it stands on."""

    desk: Desk
    mug_id: str
    rects: dict[str, A]  # id -> [x1, y1, x2, y2] cm (best fit), current positions
    labels: dict[str, str]
    surface: TableSurface
    w: float = 0.0
    d: float = 0.0
    start: tuple[float, float] = (0.0, 0.0)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> tuple[float, float, float, float]:
        """The table's visible footprint (cm); with no table, the region the desk's own objects
        cover (people, furniture and animals stand around a desk, not on it)."""
        if self.surface.kind != "inferred":
            return self.surface.footprint_cm
        got = self.extra.get("region")
        if got is None:
            got = self.extra["region"] = self._desk_cluster()
        return got

    def _desk_cluster(self) -> tuple[float, float, float, float]:
        """The mug and the desk objects within CLUSTER_CM of it, grown until nothing joins: a remote
        in someone's hand or a bag on the sofa across the room is not part of the desk."""
        desk = {i for i, lab in self.labels.items() if i in self.rects and lab not in NOT_ON_A_DESK}
        r = np.array(self.rects[self.mug_id], dtype=float)
        inside = {self.mug_id}
        grew = True
        while grew:
            grew = False
            for i in sorted(desk - inside):
                t = self.rects[i]
                dx, dy = max(t[0] - r[2], r[0] - t[2], 0.0), max(t[1] - r[3], r[1] - t[3], 0.0)
                if dx <= CLUSTER_CM and dy <= CLUSTER_CM:
                    r = np.array([min(r[0], t[0]), min(r[1], t[1]), max(r[2], t[2]), max(r[3], t[3])])
                    inside.add(i)
                    grew = True
        return (float(r[0]), float(r[1]), float(r[2]), float(r[3]))

    def members(self, sel: Selector | None, *, but_me: bool = True) -> list[str]:
        if sel is None:
            return []
        key = (sel.kind, tuple(sel.labels), but_me, self.mug_id)
        got = self.extra.get(key)
        if got is None:
            got = self.extra[key] = [
                i
                for i, lab in self.labels.items()
                if sel.selects(lab) and i in self.rects and (i != self.mug_id or not but_me)
            ]
        return got

    def targets(self, rule: Rule) -> list[str]:
        """The objects the mug keeps a relation with under this rule."""
        t = rule.target
        if t is not None and t.kind == "each_other":
            return self.members(rule.subject)
        me = self.labels[self.mug_id]
        if rule.subject.selects(me):
            return self.members(t)
        if t is not None and t.selects(me):  # the mug is the rule's target: pairs are symmetric
            return self.members(rule.subject)
        return []

    def stack(self, ids: list[str]) -> A:
        key = ("stack", tuple(ids))
        got = self.extra.get(key)
        if got is None:
            got = self.extra[key] = np.array([self.rects[i] for i in ids], dtype=float).reshape(-1, 4)
        return got


def gaps2(X: A, Y: A, w: float, d: float, t: A) -> A:
    """(N, M) squared footprint-to-footprint gaps between candidates and M rectangles (no sqrt:
    the solver compares them with squared thresholds)."""
    x1, y1 = X[:, None], Y[:, None]
    dx = np.maximum(np.maximum(t[None, :, 0] - (x1 + w), x1 - t[None, :, 2]), 0.0)
    dy = np.maximum(np.maximum(t[None, :, 1] - (y1 + d), y1 - t[None, :, 3]), 0.0)
    return dx * dx + dy * dy


def gaps(X: A, Y: A, w: float, d: float, t: A) -> A:
    """(N, M) footprint-to-footprint gaps between candidates and M rectangles (cm)."""
    return np.sqrt(gaps2(X, Y, w, d, t))


def zone_lines(t: A, g: float, w: float, d: float) -> tuple[list[float], list[float]]:
    """Where the moved footprint's corner touches a zone of `g` cm around each rectangle."""
    xs: list[float] = []
    ys: list[float] = []
    for r in t:
        xs += [r[2] + g, r[0] - g - w, r[0] + g, r[2] - g - w]
        ys += [r[3] + g, r[1] - g - d, r[1] + g, r[3] - g - d]
    return xs, ys


def zone_polygon(r: A | tuple[float, ...], g: float, steps: int = 6) -> list[tuple[float, float]]:
    """The outline of everything within `g` cm of a rectangle: a rounded rectangle, as points."""
    x1, y1, x2, y2 = (float(v) for v in r)
    if g <= 0:
        return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    pts: list[tuple[float, float]] = []
    corners = ((x2, y1, -np.pi / 2), (x2, y2, 0.0), (x1, y2, np.pi / 2), (x1, y1, np.pi))
    for cx, cy, a0 in corners:
        for k in range(steps + 1):
            a = a0 + (np.pi / 2) * k / steps
            pts.append((cx + g * float(np.cos(a)), cy + g * float(np.sin(a))))
    return pts


def inside_support(ctx: Ctx, X: A, Y: A) -> NDArray[np.bool_]:
    """The whole footprint on the table: inside its visible part, a margin from edges it shows."""
    R = ctx.region
    m = {
        e: (EDGE_MARGIN_CM if ctx.surface.edges[e].seen else 0.5) for e in ("left", "right", "front", "back")
    }
    return (
        (R[0] + m["left"] <= X)
        & (X + ctx.w <= R[2] - m["right"])
        & (R[1] + m["front"] <= Y)
        & (Y + ctx.d <= R[3] - m["back"])
    )


def clear_of_others(ctx: Ctx, X: A, Y: A) -> NDArray[np.bool_]:
    others = [
        i for i, lab in ctx.labels.items() if i != ctx.mug_id and i in ctx.rects and lab not in SURFACE_LABELS
    ]
    if not others:
        return np.ones(X.shape, bool)
    return (gaps(X, Y, ctx.w, ctx.d, ctx.stack(others)) >= CLEAR_CM).all(axis=1)


def to_pixels(ctx: Ctx, pts: list[tuple[float, float]]) -> list[list[float]] | None:
    """Plane points -> pixel points; None when any is behind the camera."""
    if not pts:
        return None
    u, v, ok = ctx.desk.to_pixels([p[0] for p in pts], [p[1] for p in pts])
    if not bool(np.all(ok)):
        return None
    return np.round(np.column_stack([u, v]), 1).tolist()


def guide(
    ctx: Ctx, kind: str, pts: list[tuple[float, float]], label: str, rule: Rule
) -> dict[str, Any] | None:
    px = to_pixels(ctx, pts)
    if px is None:
        return None
    return {"kind": kind, "points_px": px, "label": label, "rule": rule.text or rule.interpretation}


def corner_points(
    t: A, g: float, w: float, d: float, start: tuple[float, float]
) -> list[tuple[float, float]]:
    """Nearest spots to `start` on the rounded corners of a `g` cm zone around each rectangle
    (footprint-to-footprint gaps are Euclidean there, so the shortest move can be diagonal)."""
    x0, y0 = start
    pts = []
    for a1, b1, a2, b2 in t:
        for cx, cy in ((a2, b2), (a1 - w, b2), (a2, b1 - d), (a1 - w, b1 - d)):
            dist = float(np.hypot(x0 - cx, y0 - cy))
            if dist < 1e-9 or g <= 0:
                continue
            k = (g + 1e-3) / dist
            pts.append((float(cx + (x0 - cx) * k), float(cy + (y0 - cy) * k)))
    return pts
