"""A table's outline: the sides the photo shows, as lines on the plane.

A box says where a table stops in the picture, not where its sides run: a rectangle seen in
perspective is a trapezoid, and one turned against the camera is a slanted one, so a box's side
is one corner, and how the side runs from there (`TABLE_TURN_DEG`) is a guess bounded by what
stands on it. A detector that segments (a `-seg` model) gives the table's outline, and each
stretch of it that is not the photo's border is a side itself: a line on the plane, read per
sample of the camera, with no guess about the turn. This module finds those stretches
(`outline_sides`, from `mugpos.scene.sides`) and measures a footprint against them (`line_gap`).

Pure numpy. The outline's points are as unsure as a box's sides (`BOX_SIGMA_REL`): each sample
reads them a little differently, as `table_surface` does the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mugpos.scene.boxes import BOX_SIGMA_PX, BOX_SIGMA_REL, TABLE_BORDER_FRAC
from mugpos.scene.camera import F
from mugpos.scene.model import Detection, EdgeName
from mugpos.scene.plane import PlaneFit
from mugpos.scene.posterior import OBJECT_TEMPER
from mugpos.scene.sides import rectangle_sides, sides_of_a_kind

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


def _names(normals: list[F], kinds: np.ndarray) -> list[EdgeName]:
    """Which side of the table each inward normal (on the plane) belongs to. Sides of one kind
    (parallel: `sides_of_a_kind`) are front and back, or left and right, together: a desk turned
    45 degrees has every normal as much across as deep, and reading each alone gave two sides one
    name (and lost one). The kind nearer to running across the picture is front and back."""
    nx, ny = (np.array([abs(float(n[j])) for n in normals]) for j in (0, 1))
    across = [float(np.mean(ny[kinds == g] - nx[kinds == g])) if (kinds == g).any() else 0.0 for g in (0, 1)]
    out: list[EdgeName] = []
    for n, g in zip(normals, kinds, strict=True):
        if across[g] > across[1 - g] or (across[g] == across[1 - g] and g == 0):
            out.append("front" if n[1] > 0 else "back")
        else:
            out.append("left" if n[0] > 0 else "right")
    return out


def jitter_px(t: Detection) -> F:
    """How far (px, 1 sigma, across and down) each sample moves a table's box sides and outline:
    a detector places them no better than an object's box (`BOX_SIGMA_REL`), widened as the
    objects' are (`OBJECT_TEMPER`)."""
    return (np.array([t.width, t.height]) * BOX_SIGMA_REL + BOX_SIGMA_PX) * OBJECT_TEMPER**0.5


def outline_sides(fit: PlaneFit, t: Detection, width: float, height: float) -> dict[EdgeName, Line]:
    """The table's sides its outline shows, as lines on the plane per sample (the longest stretch
    on each side, by the best fit). Empty without an outline, or on a top-down fit whose sides a
    box already reads exactly."""
    if t.outline is None or fit.kind == "top_down":
        return {}
    sides = rectangle_sides(t.outline, width, height, TABLE_BORDER_FRAC)
    if not sides:
        return {}
    k = len(fit.samples)
    rng = np.random.default_rng(SIDE_SEED)
    sig = jitter_px(t)
    centre = np.asarray(t.outline, dtype=float).mean(axis=0)
    cx, cy = fit.ground(centre[0], centre[1])
    read: list[tuple[int, float, Line]] = []  # side index, length by the best fit, line
    for i, side in enumerate(sides):
        ends = []
        for p in (side.start, side.end):
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
        read.append((i, float(length[0]), Line(point=a, normal=n)))
    if not read:
        return {}
    names = _names([line.normal[0] for _, _, line in read], sides_of_a_kind([sides[i] for i, _, _ in read]))
    best: dict[EdgeName, tuple[float, Line]] = {}
    for (_, length0, line), name in zip(read, names, strict=True):
        if name not in best or length0 > best[name][0]:
            best[name] = (length0, line)
    return {name: line for name, (_, line) in best.items()}


def line_gap(line: Line, f: F, r: F) -> F:
    """Footprints (K, 4) with corner radius `r` (K,) to a side, inward positive, per sample: the
    rounded rectangle's nearest point to the line (its support toward the line's outside)."""
    cx, cy = (f[:, 0] + f[:, 2]) / 2, (f[:, 1] + f[:, 3]) / 2
    hw, hd = (f[:, 2] - f[:, 0]) / 2 - r, (f[:, 3] - f[:, 1]) / 2 - r
    nx, ny = line.normal[:, 0], line.normal[:, 1]
    centre = (cx - line.point[:, 0]) * nx + (cy - line.point[:, 1]) * ny
    return centre - (np.abs(hw * nx) + np.abs(hd * ny) + r)
