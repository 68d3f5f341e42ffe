"""A table's outline: the sides the photo shows, as lines on the plane.

A box says where a table stops in the picture, not where its sides run: a rectangle seen in
perspective is a trapezoid, and one turned against the camera is a slanted one, so a box's side
is one corner, and how the side runs from there (`TABLE_TURN_DEG`) is a guess bounded by what
stands on it. A detector that segments (a `-seg` model) gives the table's outline, and each
stretch of it that is not the photo's border is a side itself: a line on the plane, read per
sample of the camera, with no guess about the turn. This module finds those stretches
(`outline_sides`) and measures a footprint against them (`line_gap`).

Pure numpy. The outline's points are as unsure as a box's sides (`BOX_SIGMA_REL`): each sample
reads them a little differently, as `table_surface` does the box.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from mugpos.scene.boxes import BOX_SIGMA_PX, BOX_SIGMA_REL, TABLE_BORDER_FRAC
from mugpos.scene.camera import F
from mugpos.scene.model import Detection, EdgeName
from mugpos.scene.plane import PlaneFit
from mugpos.scene.posterior import OBJECT_TEMPER

SIMPLIFY_FRAC = 0.01  # of the photo's diagonal: how far a mask's wiggle may stray from a side
MIN_SIDE_FRAC = 0.06  # of the photo's diagonal: a shorter straight stretch is a notch, not a side
SIDE_SEED = 13


@dataclass(frozen=True)
class Line:
    """A seen side on the plane, per sample: a point on it and the unit normal pointing inward."""

    point: F  # (K, 2)
    normal: F  # (K, 2)

    def at(self, along: F, x_side: bool) -> F:
        """Where the line crosses y = `along` (a left or right side: `x_side`), else x = `along`."""
        (px, py), (nx, ny) = self.point.T, self.normal.T
        with np.errstate(invalid="ignore", divide="ignore"):
            if x_side:
                return px - ny * (along - py) / nx
            return py - nx * (along - px) / ny


def _rdp(pts: F, eps: float) -> list[int]:
    """Ramer-Douglas-Peucker: indices of the points that keep an open polyline within `eps`."""
    keep = [0, len(pts) - 1]
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        d = pts[b] - pts[a]
        n = float(np.hypot(*d))
        seg = pts[a + 1 : b] - pts[a]
        dist = np.abs(seg[:, 0] * d[1] - seg[:, 1] * d[0]) / n if n > 0 else np.hypot(seg[:, 0], seg[:, 1])
        i = int(np.argmax(dist))
        if dist[i] > eps:
            keep.append(a + 1 + i)
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return sorted(set(keep))


def image_sides(outline: list[tuple[float, float]], width: float, height: float) -> list[tuple[F, F]]:
    """The straight stretches of an outline that are not the photo's border, as (start, end) pixel
    pairs: where the mask meets the frame, the table goes on past it, and that is no side."""
    p = np.asarray(outline, dtype=float)
    tx, ty = TABLE_BORDER_FRAC * width, TABLE_BORDER_FRAC * height
    border = np.column_stack([p[:, 0] <= tx, p[:, 1] <= ty, p[:, 0] >= width - tx, p[:, 1] >= height - ty])
    on_frame = border.any(axis=1)
    if on_frame.all():
        return []
    # Walk the closed outline from a point on the frame (if any), so each run off it is one piece.
    start = int(np.argmax(on_frame)) if on_frame.any() else 0
    order = np.roll(np.arange(len(p)), -start)
    runs: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if on_frame[i]:
            if cur:
                runs.append([*cur, int(i)])  # a side runs up to where it meets the frame
                cur = []
            cur = [int(i)]
        else:
            cur.append(int(i))
    if on_frame.any():
        if len(cur) > 1:
            runs.append([*cur, int(order[0])])
    else:
        runs.append([*cur, cur[0]])  # closed: the whole table is in the photo
    diag = float(np.hypot(width, height))
    sides: list[tuple[F, F]] = []
    for run in runs:
        pts = p[run]
        keep = _rdp(pts, SIMPLIFY_FRAC * diag)
        for a, b in pairwise(keep):
            s, e = pts[a], pts[b]
            if (border[run[a]] & border[run[b]]).any():
                continue  # along one border of the frame: where the photo stops, not the table
            if np.hypot(*(e - s)) >= MIN_SIDE_FRAC * diag:
                sides.append((s, e))
    return sides


def _name(normal: F) -> EdgeName:
    """Which side of the table an inward normal (on the plane) belongs to."""
    nx, ny = float(normal[0]), float(normal[1])
    if abs(ny) >= abs(nx):
        return "front" if ny > 0 else "back"
    return "left" if nx > 0 else "right"


def outline_sides(fit: PlaneFit, t: Detection, width: float, height: float) -> dict[EdgeName, Line]:
    """The table's sides its outline shows, as lines on the plane per sample (the longest stretch
    on each side, by the best fit). Empty without an outline, or on a top-down fit whose sides a
    box already reads exactly."""
    if t.outline is None or fit.kind == "top_down":
        return {}
    sides = image_sides(t.outline, width, height)
    if not sides:
        return {}
    k = len(fit.samples)
    rng = np.random.default_rng(SIDE_SEED)
    sig = (np.array([t.width, t.height]) * BOX_SIGMA_REL + BOX_SIGMA_PX) * OBJECT_TEMPER**0.5
    centre = np.asarray(t.outline, dtype=float).mean(axis=0)
    cx, cy = fit.ground(centre[0], centre[1])
    best: dict[EdgeName, tuple[float, Line]] = {}
    for s, e in sides:
        ends = []
        for p in (s, e):
            noise = rng.standard_normal((k, 2)) * sig
            noise[0] = 0.0
            ends.append(np.column_stack(fit.ground(p[0] + noise[:, 0], p[1] + noise[:, 1])))
        a, b = ends
        if not (np.isfinite(a[0]).all() and np.isfinite(b[0]).all()):
            continue  # above the horizon: a wall or a screen, not the table
        d = b - a
        length = np.hypot(d[:, 0], d[:, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.column_stack([-d[:, 1], d[:, 0]]) / length[:, None]
        # inward: toward the outline's middle (a convex table's middle is inside it)
        towards = (cx - a[:, 0]) * n[:, 0] + (cy - a[:, 1]) * n[:, 1]
        n = np.where((towards < 0)[:, None], -n, n)
        name = _name(n[0])
        if name not in best or length[0] > best[name][0]:
            best[name] = (float(length[0]), Line(point=a, normal=n))
    return {name: line for name, (_, line) in best.items()}


def line_gap(line: Line, f: F, r: F) -> F:
    """Footprints (K, 4) with corner radius `r` (K,) to a side, inward positive, per sample: the
    rounded rectangle's nearest point to the line (its support toward the line's outside)."""
    cx, cy = (f[:, 0] + f[:, 2]) / 2, (f[:, 1] + f[:, 3]) / 2
    hw, hd = (f[:, 2] - f[:, 0]) / 2 - r, (f[:, 3] - f[:, 1]) / 2 - r
    nx, ny = line.normal[:, 0], line.normal[:, 1]
    centre = (cx - line.point[:, 0]) * nx + (cy - line.point[:, 1]) * ny
    return centre - (np.abs(hw * nx) + np.abs(hd * ny) + r)
