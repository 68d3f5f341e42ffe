"""Measuring on the table plane: footprints, gaps, edge distances, halves and sides, with ranges.

This is the API relations build on. `measure_desk(scene)` fits the plane once (`mugpos.scene.plane`)
and returns a `Desk`; every question is then a cheap pure function of it:

    desk = measure_desk(scene)
    desk.footprint("cup-1")              -> Footprint (rect [x1, y1, x2, y2] cm on the plane, sigma)
    desk.gap("cup-1", "laptop-1")        -> Measured (value_cm, lo_cm, hi_cm), footprint to footprint
    desk.surface_of("cup-1")             -> TableSurface (footprint, each edge seen or cut)
    desk.edge_distance("cup-1", "front") -> EdgeDistance (measured, seen); a cut edge gives a lower
                                            bound only (hi_cm None, value_cm None)
    desk.nearest_edge("cup-1", edges)    -> EdgeDistance to the nearest of several edges
    desk.in_region("cup-1", "left")      -> Truth ("yes" / "no" / "uncertain") for the whole footprint
                                            in that half / third / corner of its table, and how far
                                            it must move to be inside (Measured)
    desk.direction("cup-1", "laptop-1", "left_of") -> Truth
    desk.deviation(ids, axis)            -> {id: Measured}: off the row (y) or column (x) median line
    desk.moved("cup-1", dx_cm, dy_cm)    -> a new Desk with that footprint moved on the plane
    desk.box_at("cup-1", dx_cm, dy_cm)   -> where that object would appear in the photo, pixels
    desk.measured_scene()                -> the Scene with `plane`, `surface`, `footprint_cm` filled

A footprint is a rectangle on the plane; a round object's has rounded corners, and a box-shaped
one's (a keyboard, a book) is turned inside it when its fitted aspect is squarer than its kind's:
gaps are measured between those shapes (`mugpos.scene.footprint`), the turn taken either way
across the samples (a box cannot tell which way), the best estimate the mean of both. Tables, their
edges seen or cut and the turn a box cannot show are `mugpos.scene.table`.

Table coordinates: cm, x to the right, y away from the camera (the front edge has the smaller y).
Every measurement is computed on each sample of the plane's uncertainty; `lo_cm`/`hi_cm` bound the
central `RANGE_PCT` of them (None: unbounded, as toward an edge the photo does not show), and
`value_cm` is the best fit's. `Measured.at_least(t)` / `.at_most(t)` turn a range into a status:
satisfied only when the whole range passes, violated only when the whole range fails, else
uncertain. Truth values follow the same rule on the share of samples where the relation holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mugpos.scene.boxes import cut_sides, predicted_boxes
from mugpos.scene.camera import F, ground, project
from mugpos.scene.footprint import _core, _poly_gap, _rect_gap, _shrink, _turn_of
from mugpos.scene.geometry import behind_the_tables, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Detection, EdgeName, Footprint, Scene, TableSurface
from mugpos.scene.outline import line_gap
from mugpos.scene.plane import PlaneFit, fit_plane
from mugpos.scene.priors import template
from mugpos.scene.table import (
    EDGE_NAMES,
    INF,
    Surf,
    bound_turn,
    edge_gap,
    half_across,
    inferred_surface,
    table_surface,
    turn_reach,
)

OFF_HORIZON = "not standing on the table plane (above the horizon), so not measurable on it"
OFF_BEHIND = (
    "behind the table's back edge (on a shelf, a rack or further back), not on the table, so not "
    "measurable on it"
)

RANGE_PCT = 95.0  # the central share of samples a range covers
SURE = 0.95  # share of samples that must agree before a yes/no is not "uncertain"
EPS_CM = 1e-9
Status = Literal["satisfied", "violated", "uncertain"]
Truth = Literal["yes", "no", "uncertain"]
OFF_EDGE = (
    "its footprint is measured with its centre past the table's {edge} edge, where it could not "
    "stand: the measurement is off there"
)


@dataclass(frozen=True)
class Measured:
    """A length on the plane: the best estimate and the range the uncertainty allows (cm).

    `lo_cm`/`hi_cm` None means unbounded that way; `value_cm` None means only a bound is known.
    """

    value_cm: float | None
    lo_cm: float | None
    hi_cm: float | None

    @property
    def range_cm(self) -> tuple[float | None, float | None]:
        """(lo, hi) rounded to 0.01 cm for output."""
        return (_r2(self.lo_cm), _r2(self.hi_cm))

    @property
    def value(self) -> float | None:
        """value_cm rounded to 0.01 cm for output."""
        return _r2(self.value_cm)

    def at_least(self, threshold: float) -> Status:
        if self.lo_cm is not None and self.lo_cm >= threshold - EPS_CM:
            return "satisfied"
        if self.hi_cm is not None and self.hi_cm < threshold - EPS_CM:
            return "violated"
        return "uncertain"

    def at_most(self, threshold: float) -> Status:
        if self.hi_cm is not None and self.hi_cm <= threshold + EPS_CM:
            return "satisfied"
        if self.lo_cm is not None and self.lo_cm > threshold + EPS_CM:
            return "violated"
        return "uncertain"


def _r2(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def measured(samples: F) -> Measured:
    """Samples (row 0: best fit) -> Measured (unrounded); +-inf rows make a side unbounded."""
    s = np.asarray(samples, dtype=float)
    s = np.where(np.isnan(s), INF, s)
    q = (100 - RANGE_PCT) / 2
    v = float(s[0])
    lo = min(float(np.percentile(s, q, method="nearest")), v)
    hi = max(float(np.percentile(s, 100 - q, method="nearest")), v)

    def r(x: float) -> float | None:
        return x if np.isfinite(x) else None

    return Measured(r(v), r(lo), r(hi))


def truth(holds: F, sure_not: F | None = None) -> Truth:
    """Per-sample booleans (row 0: best fit) -> yes / no / uncertain."""
    h = np.asarray(holds, dtype=bool)
    n = np.asarray(~h if sure_not is None else sure_not, dtype=bool)
    if h.mean() >= SURE and h[0]:
        return "yes"
    if n.mean() >= SURE and n[0]:
        return "no"
    return "uncertain"


@dataclass(frozen=True)
class EdgeDistance:
    """Distance from an object's footprint to one table edge (or the nearest of several)."""

    edge: EdgeName
    measured: Measured
    seen: bool
    why: str = ""


@dataclass
class Desk:
    """The measured desk of one scene (see the module docstring for the questions it answers)."""

    scene: Scene
    fit: PlaneFit
    feet: dict[str, F] = field(default_factory=dict)  # id -> (K, 4) footprint rects
    # id -> (K,) corner radius of the footprint (cm): a mug, bottle or bowl stands on a disc, not on
    # its bounding square, and a neighbour set diagonally is that much farther from it.
    round_cm: dict[str, F] = field(default_factory=dict)
    # id -> (K,) turn (radians, either way) of a box-shaped object's footprint inside its
    # rectangle (`_turn_of`): a book or a keyboard turned on the desk fills its bounding rect
    # only along a slanted side, and a neighbour beside it is farther from it than from the rect.
    turn_rad: dict[str, F] = field(default_factory=dict)
    surfaces: dict[str | None, Surf] = field(default_factory=dict)
    surface_ids: dict[str, str | None] = field(default_factory=dict)  # object id -> its surface id
    off_table: dict[str, str] = field(default_factory=dict)  # object id -> why it has no footprint

    # --- footprints --------------------------------------------------------------------------
    def footprint(self, object_id: str) -> Footprint | None:
        s = self.feet.get(object_id)
        if s is None:
            return None
        with np.errstate(invalid="ignore"):
            c = np.column_stack([(s[:, 0] + s[:, 2]) / 2, (s[:, 1] + s[:, 3]) / 2])
        sigma = (
            float(np.nanmax(np.nanstd(np.where(np.isfinite(c), c, np.nan), axis=0))) if len(s) > 1 else 0.0
        )
        return Footprint(rect=tuple(round(float(x), 2) for x in s[0]), sigma_cm=round(sigma, 2))  # type: ignore[arg-type]

    def gap(self, a: str, b: str) -> Measured:
        """Shortest distance between two footprints on the plane (0 when they touch or overlap).

        A round object's footprint is its rectangle with rounded corners (`round_cm`); a
        box-shaped one is the rectangle turned by `turn_rad` inside its bounding rect. Which way
        it is turned a box cannot tell: each sample takes one way, and the best estimate is the
        mean over both (over all four when both objects are turned)."""
        fa, fb = self.feet[a], self.feet[b]
        ra, rb = self._round(a, len(fa)), self._round(b, len(fb))
        ta, tb = self.turn_rad.get(a), self.turn_rad.get(b)
        if ta is None and tb is None:
            return measured(_rect_gap(_shrink(fa, ra), _shrink(fb, rb), ra, rb))
        g = _poly_gap(_core(fa, ra, ta), _core(fb, rb, tb), ra, rb)
        flips = [(sa, sb) for sa in ((1.0, -1.0) if ta is not None else (1.0,))
                 for sb in ((1.0, -1.0) if tb is not None else (1.0,))]  # fmt: skip
        best = [
            _poly_gap(
                _core(fa[:1], ra[:1], None if ta is None else sa * ta[:1]),
                _core(fb[:1], rb[:1], None if tb is None else sb * tb[:1]),
                ra[:1],
                rb[:1],
            )[0]
            for sa, sb in flips
        ]
        g = g.copy()
        g[0] = float(np.mean(best))
        return measured(g)

    def _round(self, object_id: str, k: int) -> F:
        r = self.round_cm.get(object_id)
        return np.zeros(k) if r is None else np.broadcast_to(r, (k,))

    def has_footprint(self, object_id: str) -> bool:
        return object_id in self.feet

    def why_off(self, object_id: str) -> str:
        """Why an object has no footprint on the table plane (the note its verdicts carry)."""
        return self.off_table.get(object_id, OFF_HORIZON)

    # --- the table ----------------------------------------------------------------------------
    def surface_of(self, object_id: str | None = None) -> TableSurface:
        sid = self.surface_ids.get(object_id, self._main_surface()) if object_id else self._main_surface()
        return self.surfaces[sid].info

    def _main_surface(self) -> str | None:
        return surface_for(self.scene).id if any(k is not None for k in self.surfaces) else None

    def _surf(self, object_id: str) -> Surf:
        return self.surfaces[self.surface_ids.get(object_id, self._main_surface())]

    def _edge_samples(self, object_id: str, edge: EdgeName) -> F:
        """Footprint to the edge line (or, for a cut edge, to where the photo stops), per sample."""
        s, f = self._surf(object_id), self.feet[object_id]
        if edge in s.lines:
            return line_gap(s.lines[edge], f, self._round(object_id, len(f)))
        d = edge_gap(s, f, edge)
        if s.turn is not None and s.info.edges[edge].seen:
            d = d - turn_reach(s, f, edge) * s.turn
        return d

    def edge_distance(self, object_id: str, edge: EdgeName) -> EdgeDistance:
        """From the footprint to one edge of its table, inward positive; a cut edge: lower bound."""
        return self.nearest_edge(object_id, (edge,))

    def nearest_edge(
        self, object_id: str, edges: tuple[EdgeName, ...] | list[EdgeName] = EDGE_NAMES
    ) -> EdgeDistance:
        """Distance to the nearest of `edges`. A seen edge bounds it from above and below; an edge the
        frame cuts only from below (the table goes on past the photo); an inferred table not at all.
        `value_cm` is known only when the nearest edge is a seen one that no cut edge could undercut.
        """
        s = self._surf(object_id)
        info = s.info
        if info.kind == "inferred":
            why = info.edges[edges[0]].why
            return EdgeDistance(edges[0], Measured(None, None, None), False, why)
        off = self._off_table(object_id)
        if off is not None:
            return EdgeDistance(off, Measured(None, None, None), False, OFF_EDGE.format(edge=off))
        d = {e: self._edge_samples(object_id, e) for e in edges}
        seen = [e for e in edges if info.edges[e].seen]
        lo = np.min(np.stack([d[e] for e in edges]), axis=0)
        hi = np.min(np.stack([d[e] for e in seen]), axis=0) if seen else np.full(len(lo), INF)
        m_lo, m_hi = measured(lo), measured(hi)
        nearest_seen = min(seen, key=lambda e: d[e][0]) if seen else None
        best = min(edges, key=lambda e: d[e][0])
        if nearest_seen is not None and best == nearest_seen:
            return EdgeDistance(best, Measured(m_hi.value_cm, m_lo.lo_cm, m_hi.hi_cm), True, "")
        return EdgeDistance(best, Measured(None, m_lo.lo_cm, m_hi.hi_cm), False, info.edges[best].why)

    def _off_table(self, object_id: str) -> EdgeName | None:
        """A seen edge the best estimate puts the object's centre beyond, if any. An object standing
        on the table cannot be there, so its measurement against that table is off (a box misread
        or a table side the detector placed too far in): no verdict should rest on it."""
        s, f = self._surf(object_id), self.feet[object_id][:1]
        for e in EDGE_NAMES:
            if s.info.edges[e].seen and self._edge_samples(object_id, e)[0] + half_across(f, e)[0] < 0:
                return e
        return None

    def in_region(self, object_id: str, region: str) -> tuple[Truth, Measured]:
        """Whether the whole footprint lies in `region` of its table (left/right/front/back halves,
        the centre third, or a corner quarter), and how far it is from getting there."""
        s, f = self._surf(object_id), self.feet[object_id]
        lo_rect = np.where(np.isfinite(s.rect), s.rect, s.visible)  # the table's visible part
        sure_in = np.ones(len(f), bool)
        sure_out = np.zeros(len(f), bool)
        offset = np.zeros(len(f))
        parts = ["center"] if region == "center" else region.split("-")
        for part in parts:
            for axis in ((0, 2), (1, 3)) if part == "center" else (_axis(part),):
                a, b = axis
                # The real edge is at or beyond the visible one: mid lies between these two.
                m_vis = (lo_rect[:, a] + lo_rect[:, b]) / 2
                m_far_lo = (s.rect[:, a] + lo_rect[:, b]) / 2  # -inf when the low edge is cut
                m_far_hi = (lo_rect[:, a] + s.rect[:, b]) / 2  # +inf when the high edge is cut
                if part == "center":
                    w_vis = lo_rect[:, b] - lo_rect[:, a]
                    lo_line, hi_line = lo_rect[:, a] + w_vis / 3, lo_rect[:, a] + 2 * w_vis / 3
                    ok = (f[:, a] >= lo_line) & (f[:, b] <= hi_line)
                    cut = ~np.isfinite(s.rect[:, a]) | ~np.isfinite(s.rect[:, b])
                    sure_in &= ok & ~cut
                    sure_out |= ~ok & ~cut
                    offset = np.hypot(
                        offset, np.maximum(np.maximum(lo_line - f[:, a], f[:, b] - hi_line), 0.0)
                    )
                elif part in ("left", "front"):
                    sure_in &= f[:, b] <= np.minimum(m_far_lo, m_vis)
                    sure_out |= f[:, b] > np.maximum(m_far_hi, m_vis)
                    offset = np.hypot(offset, np.maximum(f[:, b] - m_vis, 0.0))
                else:  # right, back
                    sure_in &= f[:, a] >= np.maximum(m_far_hi, m_vis)
                    sure_out |= f[:, a] < np.minimum(m_far_lo, m_vis)
                    offset = np.hypot(offset, np.maximum(m_vis - f[:, a], 0.0))
        return truth(sure_in, sure_out), measured(offset)

    def direction(self, a: str, b: str, direction: str) -> Truth:
        """`a` left_of / right_of / behind / in_front_of `b` on the plane: a's centre beyond b's
        quarter line on that side (so a mug beside a laptop is right of it, not also behind it)."""
        fa, fb = self.feet[a], self.feet[b]
        ax, ay = (fa[:, 0] + fa[:, 2]) / 2, (fa[:, 1] + fa[:, 3]) / 2
        bw, bd = fb[:, 2] - fb[:, 0], fb[:, 3] - fb[:, 1]
        holds = {
            "left_of": ax < fb[:, 0] + 0.25 * bw,
            "right_of": ax > fb[:, 2] - 0.25 * bw,
            "in_front_of": ay < fb[:, 1] + 0.25 * bd,
            "behind": ay > fb[:, 3] - 0.25 * bd,
        }[direction]
        return truth(holds)

    def deviation(self, ids: list[str], axis: Literal["row", "column"]) -> dict[str, Measured]:
        """How far each footprint's centre is from the group's median line (row: along y)."""
        k = (1, 3) if axis == "row" else (0, 2)
        c = np.stack([(self.feet[i][:, k[0]] + self.feet[i][:, k[1]]) / 2 for i in ids], axis=1)
        med = np.median(c, axis=1, keepdims=True)
        return {i: measured(np.abs(c[:, j] - med[:, 0])) for j, i in enumerate(ids)}

    def stands_on_table(self, object_id: str) -> Truth:
        """Whether the footprint's centre lies on a detected table (inside its seen edges)."""
        sid = self.surface_ids.get(object_id)
        if sid is None:
            return "no"
        s, f = self.surfaces[sid], self.feet[object_id]
        cx, cy = (f[:, 0] + f[:, 2]) / 2, (f[:, 1] + f[:, 3]) / 2
        inside = (cx >= s.rect[:, 0]) & (cx <= s.rect[:, 2]) & (cy >= s.rect[:, 1]) & (cy <= s.rect[:, 3])
        return truth(inside)

    # --- moving things (the placement solver) ---------------------------------------------------
    def point(self) -> Desk:
        """The best fit alone, without its uncertainty samples: ~100x cheaper per question, for
        search loops that judge thousands of candidate spots by the best estimate."""
        fit = replace(self.fit, samples=self.fit.samples[:1])
        surfaces = {k: v.first() for k, v in self.surfaces.items()}
        return replace(
            self,
            fit=fit,
            feet={k: v[:1] for k, v in self.feet.items()},
            round_cm={k: v[:1] for k, v in self.round_cm.items()},
            turn_rad={k: v[:1] for k, v in self.turn_rad.items()},
            surfaces=surfaces,
        )

    def moved(self, object_id: str, dx_cm: float, dy_cm: float) -> Desk:
        """A copy where `object_id` stands dx, dy cm away on the plane (same uncertainty)."""
        feet = dict(self.feet)
        feet[object_id] = self.feet[object_id] + np.array([dx_cm, dy_cm, dx_cm, dy_cm])
        return replace(self, feet=feet)

    def moved_box(self, object_id: str, box: tuple[float, float, float, float]) -> Desk:
        """A copy where `object_id` appears at `box` in the photo: its footprint slides with the
        point where the box's bottom centre meets the plane (for solvers that move boxes)."""
        obj = self.scene.get(object_id)
        assert obj is not None
        if box == obj.box or object_id not in self.feet:
            return self
        gx0, gy0 = self.fit.ground(obj.center[0], obj.box[3])
        gx1, gy1 = self.fit.ground((box[0] + box[2]) / 2, box[3])
        dx, dy = gx1 - gx0, gy1 - gy0
        if not (np.isfinite(dx[0]) and np.isfinite(dy[0])):
            dx = dy = np.full(len(gx0), INF)
        feet = dict(self.feet)
        feet[object_id] = self.feet[object_id] + np.column_stack([dx, dy, dx, dy])
        return replace(self, feet=feet)

    def box_at(self, object_id: str, dx_cm: float, dy_cm: float) -> tuple[float, float, float, float]:
        """Where the object would appear in the photo after moving dx, dy cm on the plane."""
        b = self.boxes_at(object_id, np.array([dx_cm]), np.array([dy_cm]))[0]
        if self.fit.kind == "top_down":  # exact: a given scale moves a box by whole cm * ppc
            return tuple(float(c) for c in b)  # type: ignore[return-value]
        return tuple(round(float(c), 1) for c in b)  # type: ignore[return-value]

    def boxes_at(self, object_id: str, dx_cm: ArrayLike, dy_cm: ArrayLike) -> F:
        """`box_at` for many moves at once: (N, 4) boxes. An object with a 3D model is drawn from it,
        each side the frame does not cut shifted by how far its real box differs from the drawn one
        (scaled with its size), so an unmoved object appears where it is and a side the frame cuts
        comes out whole. One without a model moves its contact point and scales its box."""
        obj = self.scene.get(object_id)
        assert obj is not None
        dx, dy = np.asarray(dx_cm, dtype=float), np.asarray(dy_cm, dtype=float)
        there = self._drawn_boxes(object_id, dx, dy)
        if self.fit.kind == "top_down" or object_id not in self.fit.ids:
            return there
        now = self._drawn_boxes(object_id, np.zeros(1), np.zeros(1))[0]
        k = (there[:, 2] - there[:, 0]) / max(float(now[2] - now[0]), 1e-6)
        cut = np.array(cut_sides(obj.box, float(self.scene.image.width), float(self.scene.image.height)))
        residual = np.where(cut, 0.0, np.asarray(obj.box, dtype=float) - now)
        return there + residual[None, :] * k[:, None]

    def _drawn_boxes(self, object_id: str, dx: F, dy: F) -> F:
        obj = self.scene.get(object_id)
        assert obj is not None
        fit = self.fit
        if fit.kind == "top_down":
            assert fit.ppc is not None
            p = fit.ppc
            return np.column_stack(
                [obj.box[0] + dx * p, obj.box[1] - dy * p, obj.box[2] + dx * p, obj.box[3] - dy * p]
            )
        th, h, f = fit.theta[:1], fit.h[:1], fit.f[:1]
        if object_id in fit.ids:
            i = fit.ids.index(object_id)
            x, y, s = fit.obj(i)
            tpl = template(fit.priors[i])[None]
            sizes = np.full(dx.shape, float(s[0]))
            stretch = np.full(dx.shape, float(fit.stretch(i)[0]))
            box = predicted_boxes(th, h, f, (x[0] + dx)[:, None], (y[0] + dy)[:, None], sizes[:, None], tpl,
                                  fit.cx, fit.cy, stretch[:, None])  # fmt: skip
            return box[:, 0]
        u0, v0 = obj.center[0], obj.box[3]
        gx, gy = ground(u0, v0, th, h, f, fit.cx, fit.cy)
        u1, v1, z1 = project(gx + dx, gy + dy, 0.0, th, h, f, fit.cx, fit.cy)
        _, _, z0 = project(gx, gy, 0.0, th, h, f, fit.cx, fit.cy)
        k = z0[0] / np.maximum(z1, 1e-3)
        w, hh = obj.width * k, obj.height * k
        return np.column_stack([u1 - w / 2, v1 - hh, u1 + w / 2, v1])

    def to_pixels(self, x: ArrayLike, y: ArrayLike) -> tuple[F, F, NDArray[np.bool_]]:
        """Table-plane points (cm) -> where the photo shows them (u, v pixels, best fit), and which
        of them are in front of the camera (drawing targets, zones and lines in perspective)."""
        xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        fit = self.fit
        if fit.kind == "top_down":
            assert fit.ppc is not None
            return xs * fit.ppc, 2 * fit.cy - ys * fit.ppc, np.ones(xs.shape, bool)
        u, v, z = project(xs, ys, 0.0, fit.theta[0], fit.h[0], fit.f[0], fit.cx, fit.cy)
        return u, v, z > 1.0

    # --- output ----------------------------------------------------------------------------------
    def measured_scene(self) -> Scene:
        """The scene with what was measured filled in: plane, surface, each object's footprint."""
        objects = [
            o.model_copy(update={"footprint_cm": self.footprint(o.id or "")}) for o in self.scene.objects
        ]
        return self.scene.model_copy(
            update={"objects": objects, "plane": self.fit.plane, "surface": self.surface_of(None)}
        )


def _axis(part: str) -> tuple[int, int]:
    return (0, 2) if part in ("left", "right") else (1, 3)


# --- building a Desk -------------------------------------------------------------------------------


def measure_desk(scene: Scene) -> Desk:
    """Fit the plane of `scene` and measure every object and table on it (pure, deterministic)."""
    fit = fit_plane(scene)
    desk = Desk(scene=scene, fit=fit)
    for i, oid in enumerate(fit.ids):
        x, y, s = fit.obj(i)
        a = fit.stretch(i)
        pr = fit.priors[i]
        w, d = s * a * pr.w, s / a * pr.d
        desk.feet[oid] = np.column_stack([x - w / 2, y - d / 2, x + w / 2, y + d / 2])
        if pr.shape == "cylinder":
            desk.round_cm[oid] = np.minimum(w, d) / 2
        else:
            # Which way it is turned a box cannot tell: each sample takes one way (seeded, so a
            # stored analysis measures the same); row 0 is read both ways (`Desk.gap`).
            sign = np.where(np.random.default_rng(101 + i).random(len(a)) < 0.5, -1.0, 1.0)
            sign[0] = 1.0
            desk.turn_rad[oid] = sign * _turn_of(pr.w / pr.d, a[:1])
    for o in scene.objects:
        if o.id in desk.feet or o.label in SURFACE_LABELS:
            continue
        if behind_the_tables(scene, o):
            desk.off_table[o.id or ""] = OFF_BEHIND
            continue
        rect = _contact_footprint(fit, o)
        if rect is not None:
            desk.feet[o.id or ""] = rect
    tables = [o for o in scene.objects if o.label in SURFACE_LABELS]
    for t in tables:
        assert t.id is not None
        desk.surfaces[t.id] = table_surface(scene, fit, t)
    for o in scene.objects:
        if o.label in SURFACE_LABELS or o.id not in desk.feet:
            continue
        sid = surface_for(scene, o).id if tables else None
        desk.surface_ids[o.id] = sid
    if any(sid is None for sid in desk.surface_ids.values()) or not tables:
        desk.surfaces[None] = inferred_surface(
            [f for oid, f in desk.feet.items() if desk.surface_ids.get(oid) is None], len(fit.samples)
        )
    for t in tables:
        on = [f for oid, f in desk.feet.items() if desk.surface_ids.get(oid) == t.id]
        bound_turn(desk.surfaces[t.id], on)
    return desk


def _contact_footprint(fit: PlaneFit, o: Detection) -> F | None:
    """An object without a 3D model: it touches the table along its box's bottom edge; as deep as wide."""
    xl, yf = fit.ground(o.box[0], o.box[3])
    xr, _ = fit.ground(o.box[2], o.box[3])
    if not np.isfinite(yf[0]) or not np.isfinite(xr[0] - xl[0]):
        return None  # above the horizon: it does not stand on this table
    with np.errstate(invalid="ignore"):
        w = np.abs(xr - xl)
    if fit.kind == "top_down":
        _, yb = fit.ground(o.box[0], o.box[1])
        return np.column_stack([xl, yf, xr, yb])
    return np.column_stack([xl, yf, xr, yf + w])
