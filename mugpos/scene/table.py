"""A table on the plane: its footprint, each edge seen or cut, and the turn a box cannot show.

A detected table's box gives its footprint on the plane (`table_surface`): a rectangle seen in
perspective is a trapezoid, so each side is read at the corner its box touches. A side the frame
cuts is not an edge: only where the photo stops showing the table is known, and the photo's border
on the plane leans with depth. A side something on the table reaches past is where the detector's
box stops, not the table (`reached_past`). A desk turned against the camera looks like a larger
square one; how far it may be turned, the things on it bound (`bound_turn`). With no table under
some objects, the region they cover stands in, with no edge to judge (`inferred_surface`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import ndtr, ndtri

from mugpos.scene.boxes import TABLE_BORDER_FRAC, cut_sides
from mugpos.scene.camera import F, horizon_row
from mugpos.scene.labels import TABLETOP_LABELS
from mugpos.scene.model import Detection, EdgeName, Scene, TableEdge, TableSurface
from mugpos.scene.outline import Line, jitter_px, outline_sides
from mugpos.scene.plane import PlaneFit

TABLE_TURN_DEG = 6.0  # how far a desk may be turned against the camera (1 sigma), unseen in a box
EDGE_NAMES: tuple[EdgeName, ...] = ("left", "right", "back", "front")
INF = float("inf")


@dataclass
class Surf:
    info: TableSurface
    rect: F  # (K, 4): x1, y1, x2, y2 per sample; an edge the photo does not show is -inf / +inf
    visible: F  # (K, 4): where the photo stops showing the table (finite where known)
    # Where each side was read (the corner the box touches): y for left/right, x for front/back.
    refs: F | None = None  # (K, 4)
    # A box cannot tell how the table is turned against the camera: tan of a turn per sample.
    turn: F | None = None  # (K,)
    # Where the frame cuts the left or right side, the photo's border seen on the plane is a line
    # that leans outward with depth (perspective): x = visible x + slope * (y - y0), per sample.
    # (K, 2) each, for the left and the right side; slope 0 where the side is seen.
    border_y0: F | None = None
    border_slope: F | None = None
    # The sides a segmenting detector's outline shows, as lines on the plane (`outline_sides`):
    # measured against directly, turn and all.
    lines: dict[EdgeName, Line] = field(default_factory=dict)

    def first(self) -> Surf:
        """Row 0 alone: the best fit's table, for questions asked without the uncertainty."""

        def head(a: F | None) -> F | None:
            return None if a is None else a[:1]

        return replace(
            self,
            rect=self.rect[:1],
            visible=self.visible[:1],
            refs=head(self.refs),
            turn=head(self.turn),
            border_y0=head(self.border_y0),
            border_slope=head(self.border_slope),
            lines={e: Line(ln.point[:1], ln.normal[:1]) for e, ln in self.lines.items()},
        )


# Per side: its column in a plane rect (x1, y1, x2, y2) and which way is inward.
_EDGE_COLS = {"left": (0, 1), "right": (2, -1), "front": (1, 1), "back": (3, -1)}


def edge_gap(s: Surf, f: F, edge: EdgeName) -> F:
    """Footprints (K, 4) to a table side read square to the camera (no turn), inward positive; for
    a side the frame cuts, to where the photo stops showing the table."""
    col, sign = _EDGE_COLS[edge]
    d = (f[:, col] - s.visible[:, col]) * sign
    if edge in ("left", "right") and s.border_slope is not None and not s.info.edges[edge].seen:
        # The frame's border on the plane is not a line of constant x (perspective widens the
        # view with depth): the object is as far from it as its nearer end, front or back, is.
        assert s.border_y0 is not None
        j = 0 if edge == "left" else 1
        lean = [s.border_slope[:, j] * (f[:, r] - s.border_y0[:, j]) for r in (1, 3)]
        d = np.minimum(d - sign * lean[0], d - sign * lean[1])
    return d


def half_across(f: F, edge: EdgeName) -> F:
    """Half of each footprint's size across a side (its width for left and right): how far its
    centre stands inside its near edge."""
    a = _EDGE_COLS[edge][0] % 2  # x1 for left and right, y1 for front and back
    return (f[:, a + 2] - f[:, a]) / 2


def turn_reach(s: Surf, f: F, edge: EdgeName) -> F:
    """How far along a seen side the footprint stands from the corner the side was read at: a
    desk turned by t brings that side |reach| * tan t closer to it. Row 0, the best estimate,
    takes the mean over both ends of the front and back sides (which end the box's bottom or top
    touched, the box cannot tell): half the table's width wherever the object stands."""
    assert s.refs is not None
    col, _ = _EDGE_COLS[edge]
    along = (f[:, 1] + f[:, 3]) / 2 if edge in ("left", "right") else (f[:, 0] + f[:, 2]) / 2
    with np.errstate(invalid="ignore"):
        reach = np.abs(along - s.refs[:, col])
        if edge in ("front", "back"):
            reach[0] = (abs(along[0] - s.visible[0, 0]) + abs(along[0] - s.visible[0, 2])) / 2
    return reach


def bound_turn(s: Surf, feet: list[F]) -> None:
    """Draw each sample's turn of the table, given what stands on it (`feet`: their footprints).

    A box cannot show how a desk is turned against the camera (`TABLE_TURN_DEG`, 1 sigma), but
    the things on it can bound it: a turn brings each seen side closer to everything along it,
    and none of them can end up with its centre past a side. So each sample's turn is drawn
    from the prior cut at the largest turn that keeps every footprint centre on the table (a
    mug standing near the far end of the front side says the side cannot slope far toward it).
    Row 0 takes the median turn."""
    if s.turn is None or s.refs is None:
        return
    k = len(s.turn)
    t_max = np.full(k, INF)
    with np.errstate(invalid="ignore", divide="ignore"):
        for f in feet:
            for e in EDGE_NAMES:
                if not s.info.edges[e].seen or e in s.lines:
                    continue  # (a side the outline shows has its own turn)
                room = edge_gap(s, f, e) + half_across(f, e)
                reach = turn_reach(s, f, e)
                bound = np.where(room <= 0, 0.0, room / np.maximum(reach, 1e-9))
                t_max = np.minimum(t_max, np.where(np.isfinite(bound), bound, INF))
    sig = np.radians(TABLE_TURN_DEG)
    z_max = np.arctan(t_max) / sig
    u = np.random.default_rng(7).random(k)
    # the half-normal cut at z_max, by inverse CDF: |z| = ndtri(1/2 + u (Phi(z_max) - 1/2))
    z = ndtri(0.5 + u * (ndtr(z_max) - 0.5))
    turn = np.tan(sig * np.clip(z, 0.0, None))
    turn[0] = float(np.median(turn[1:])) if k > 1 else 0.0
    s.turn = turn


def table_surface(scene: Scene, fit: PlaneFit, t: Detection) -> Surf:
    """A detected table's footprint: its box's corners on the plane, each side seen or cut."""
    W, H = float(scene.image.width), float(scene.image.height)
    cut = cut_sides(t.box, W, H, TABLE_BORDER_FRAC)
    past = reached_past(scene, t)
    # A table's box is as unsure as any detector box (a side the frame cuts stays on the frame):
    # each sample reads the sides a little differently, the best estimate reads them as given.
    k = len(fit.samples)
    noise = np.random.default_rng(11).standard_normal((k, 4))
    noise[0] = 0.0
    sig = np.tile(jitter_px(t), 2)
    jit = np.where(np.array(cut), 0.0, noise * sig)
    x1, y1, x2, y2 = (t.box[i] + jit[:, i] for i in range(4))
    v_row = np.minimum(y2, H - 1.0)  # the nearest visible row
    # A rectangle seen in perspective is a trapezoid: its side meets the box at the near corner
    # when that side lies left (right) of the picture's centre, else at the far corner.
    near_l, near_r = t.box[0] <= fit.cx, t.box[2] >= fit.cx
    xl, xr = _side(fit, x1, v_row, y1, near_l), _side(fit, x2, v_row, y1, near_r)
    _, yf = fit.ground((x1 + x2) / 2, v_row)
    _, yb = fit.ground((x1 + x2) / 2, y1)
    far_row = np.maximum(y1, _horizon_safe(fit, H))  # the farthest row that still shows the plane
    beyond = not np.isfinite(yb[0])
    if beyond:  # the box reaches above the horizon: its top is a wall or a screen, not the table
        _, yb = fit.ground((x1 + x2) / 2, far_row)
    visible = np.column_stack([xl, yf, xr, yb])
    seen = {
        "left": not (cut[0] or "left" in past),
        "back": not (cut[1] or beyond),
        "right": not (cut[2] or "right" in past),
        "front": not (cut[3] or "front" in past),
    }
    # A side the outline shows is seen, wherever the box met the frame, and stands where its line
    # crosses the middle of the table's visible part.
    lines = outline_sides(fit, t, W, H)
    for name, line in lines.items():
        col = _EDGE_COLS[name][0]
        across = (1, 3) if col in (0, 2) else (0, 2)
        visible[:, col] = line.at((visible[:, across[0]] + visible[:, across[1]]) / 2, col % 2 == 0)
        seen[name] = True
    rect = visible.copy()
    for name in EDGE_NAMES:
        col = _EDGE_COLS[name][0]
        if not seen[name]:
            rect[:, col] = -INF if col < 2 else INF
    why = {
        n: ""
        if seen[n]
        else past[n]
        if n in past and not cut[EDGE_COL[n]]
        else ("the photo's frame cuts it" if n != "back" or not beyond else "not on the plane")
        for n in seen
    }
    edges = {
        n: TableEdge(seen=seen[n], position_cm=round(float(visible[0, _EDGE_COLS[n][0]]), 2), why=why[n])
        for n in ("left", "front", "right", "back")
    }
    cut_names = [n for n in EDGE_NAMES if not seen[n]]
    note = (
        "all four edges in the photo"
        if not cut_names
        else f"edges the photo does not show: {', '.join(cut_names)}"
    )
    info = TableSurface(
        id=t.id,
        kind="table",
        footprint_cm=tuple(round(float(c), 2) for c in visible[0]),
        edges=edges,
        note=note,
    )  # type: ignore[arg-type]
    # The box's bottom (top) is the nearest (farthest) point of the front (back) edge: one of its
    # ends, whichever a turn of the desk brings closer (farther); which one, a box cannot tell.
    end = np.where(np.random.default_rng(5).random(k) < 0.5, visible[:, 0], visible[:, 2])
    yl = yf if near_l else yb
    yr = yf if near_r else yb
    refs = np.column_stack([yl, end, yr, end])
    # A desk is rarely square to the camera: its turn is drawn once what stands on it is known
    # (`bound_turn`).
    turn = np.zeros(k)
    y0, slope = np.zeros((k, 2)), np.zeros((k, 2))
    for j, (u, is_cut) in enumerate(((x1, cut[0]), (x2, cut[2]))):
        if not is_cut:
            continue
        xn, yn = fit.ground(u, v_row)
        xf, yf2 = fit.ground(u, far_row)
        with np.errstate(invalid="ignore", divide="ignore"):
            sl = (xf - xn) / (yf2 - yn)
        y0[:, j] = yn
        slope[:, j] = np.where(np.isfinite(sl) & (np.abs(yf2 - yn) > 1e-6), sl, 0.0)
    return Surf(info, rect, visible, refs, turn, y0, slope, lines)


EDGE_COL = {"left": 0, "back": 1, "right": 2, "front": 3}  # a box's (x1, y1, x2, y2) index per side
REACH_PAST_FRAC = 0.02  # of the photo's width: how far past a table's side an object may reach


def reached_past(scene: Scene, t: Detection) -> dict[str, str]:
    """The table's detected sides (left, right, front) that something standing on it reaches past:
    those are where the detector's box stops, not where the table does (a pizza reaching 60 px left
    of the box's side stands on the table there). Why, per side, for the surface's edge notes."""
    W = float(scene.image.width)
    m = max(REACH_PAST_FRAC * W, 4.0)
    x1, y1, x2, y2 = t.box
    out: dict[str, str] = {}
    for o in scene.objects:
        if o.label not in TABLETOP_LABELS or not (y1 <= o.box[3] <= y2 + m):
            continue  # not a tabletop thing, or its base is not on this table's rows
        for side, beyond in (
            ("left", o.box[0] < x1 - m),
            ("right", o.box[2] > x2 + m),
            ("front", o.box[3] > y2 + m),
        ):
            if beyond and side not in out:
                out[side] = f"{o.id or o.label} on the table reaches past the detected side: not its edge"
    return out


def _side(fit: PlaneFit, u: F, near_row: F, far_row: F, near: bool) -> F:
    x, _ = fit.ground(u, near_row if near else far_row)
    if not near and not np.isfinite(x[0]):  # the far row is above the horizon: use the near one
        x, _ = fit.ground(u, near_row)
    return x


def _horizon_safe(fit: PlaneFit, H: float) -> float:
    hz = horizon_row(float(fit.theta[0]), float(fit.f[0]), fit.cy)
    return min(H - 1.0, (hz or 0.0) + 0.05 * H)


def inferred_surface(feet: list[F], k: int) -> Surf:
    """No table under these objects (`feet`: their footprints, `k` samples): the region they cover
    stands in, and it has no edge to judge."""
    if feet:
        stack = np.stack(feet, axis=1)  # (K, n, 4)
        visible = np.column_stack(
            [stack[..., 0].min(1), stack[..., 1].min(1), stack[..., 2].max(1), stack[..., 3].max(1)]
        )
    else:
        visible = np.zeros((k, 4))
    rect = np.tile([-INF, -INF, INF, INF], (len(visible), 1))
    why = "no table detected: the region is inferred from the objects on it"
    edges = {n: TableEdge(seen=False, position_cm=None, why=why) for n in EDGE_NAMES}
    info = TableSurface(
        id=None,
        kind="inferred",
        footprint_cm=tuple(round(float(c), 2) for c in visible[0]),
        edges=edges,
        note=why,
    )  # type: ignore[arg-type]
    return Surf(info, rect, visible)
