"""A table outline's sides in the picture, and what a rectangle's sides tell of the camera.

A segmenting detector's outline of a table (`Detection.outline`) is a polygon with a point per
pixel step, cut where the photo's frame cuts the table. `image_sides` reduces it to the straight
stretches that are the table's own sides. A table top is a rectangle: on the plane, opposite sides
are parallel and adjacent ones square. In the picture, parallel sides meet at a vanishing point on
the horizon (Criminisi, Reid & Zisserman, "Single View Metrology", 2000), so a camera that reads
them as parallel and square is one whose elevation and focal length fit them: `side_residuals`
says how far a camera is from that, in sigmas, for the plane fit (`mugpos.scene.boxes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import NamedTuple

import numpy as np

from mugpos.scene.camera import F, ground

SIMPLIFY_FRAC = 0.01  # of the photo's diagonal: how far a mask's wiggle may stray from a side
MIN_SIDE_FRAC = 0.06  # of the photo's diagonal: a shorter straight stretch is a notch, not a side
MAX_SIDES = 4  # more straight stretches than a rectangle has: a round or odd table, no sides read
OFF_PLANE_SIGMAS = 5.0  # the residual of a pair a camera puts above its horizon
# Two sides that follow each other along the outline meet at a table corner, unless the outline
# barely turns there (a side bent by something in front of it): a corner turns at least this much.
MIN_CORNER_DEG = 15.0


class Side(NamedTuple):
    """A straight stretch of a table's outline, in pixels. `run` and `step` say where it lies along
    the outline: sides of one run (the outline between two meetings with the frame) with
    consecutive steps meet at a corner of the table, so they are square to each other on the plane,
    however the desk is turned."""

    start: F
    end: F
    run: int
    step: int


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


def frame_borders(points: F, width: float, height: float, border_frac: float) -> np.ndarray:
    """(m, 4) bool: which borders of the picture (left, top, right, bottom) each point (m, 2) lies
    on, to within `border_frac` of the picture's side. Two points sharing one run along it."""
    tx, ty = border_frac * width, border_frac * height
    x, y = points[:, 0], points[:, 1]
    return np.column_stack([x <= tx, y <= ty, x >= width - tx, y >= height - ty])


def image_sides(
    outline: list[tuple[float, float]], width: float, height: float, border_frac: float
) -> list[Side]:
    """The straight stretches of an outline that are not the photo's border, as (start, end) pixel
    pairs: where the mask meets the frame (within `border_frac` of it), the table goes on past it,
    and that is no side."""
    p = np.asarray(outline, dtype=float)
    border = frame_borders(p, width, height, border_frac)
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
    sides: list[Side] = []
    for r, run in enumerate(runs):
        pts = p[run]
        keep = _rdp(pts, SIMPLIFY_FRAC * diag)
        for k, (a, b) in enumerate(pairwise(keep)):
            s, e = pts[a], pts[b]
            if (border[run[a]] & border[run[b]]).any():
                continue  # along one border of the frame: where the photo stops, not the table
            if np.hypot(*(e - s)) >= MIN_SIDE_FRAC * diag:
                sides.append(Side(s, e, r, k))
    return sides


def rectangle_sides(
    outline: list[tuple[float, float]], width: float, height: float, border_frac: float
) -> list[Side]:
    """`image_sides`, or none when there are more than a rectangle has (a round table's outline
    is chords, and a distance to a chord is no distance to its edge)."""
    sides = image_sides(outline, width, height, border_frac)
    return sides if len(sides) <= MAX_SIDES else []


@dataclass(frozen=True)
class Sides:
    """A table's sides in the picture, paired: each pair's sides are parallel on the plane
    (`square` False) or square to each other (True). Which is which comes from the outline's
    order (`sides_of_a_kind`), and from the picture only between stretches the frame parts."""

    ends: F  # (m, 2, 2): each side's two ends, pixels
    pairs: np.ndarray  # (p, 2) side indices
    square: np.ndarray  # (p,) bool
    sigma: F  # (p,) radians: how far the picture's angle may be off (both sides' ends' jitter)


def _meet_at_a_corner(a: Side, b: Side) -> bool:
    if a.run != b.run or abs(a.step - b.step) != 1:
        return False
    da, db = a.end - a.start, b.end - b.start
    cos = abs(float(np.dot(da, db))) / (float(np.hypot(*da) * np.hypot(*db)) or 1.0)
    return cos < np.cos(np.radians(MIN_CORNER_DEG))


def sides_of_a_kind(sides: list[Side]) -> np.ndarray:
    """(m,) 0 or 1 per side: sides of one kind are parallel on the plane, of two kinds square.
    Along the outline, sides that meet at a corner alternate, whatever the desk's turn (a desk
    turned 30 degrees shows its left side running more across the picture than up). Stretches the
    frame parts from each other are set against each other by the picture: a side running more up
    than across is more likely a left or right side, so each stretch takes the flip that agrees
    with that over most of its length."""
    m = len(sides)
    kind, group = np.zeros(m, dtype=int), np.arange(m)
    if m == 0:
        return kind
    for i in range(1, m):
        if _meet_at_a_corner(sides[i - 1], sides[i]):
            kind[i], group[i] = 1 - kind[i - 1], group[i - 1]
    d = np.array([s.end - s.start for s in sides], dtype=float)
    up = (np.abs(d[:, 1]) > np.abs(d[:, 0])).astype(int)
    length = np.hypot(d[:, 0], d[:, 1])
    for g in np.unique(group):
        of = group == g
        if np.sum(length[of] * (kind[of] != up[of])) > np.sum(length[of] * (kind[of] == up[of])):
            kind[of] = 1 - kind[of]
    return kind


def paired(sides: list[Side], sigma_px: float) -> Sides | None:
    """The pairs of `sides` (two or more) and how sure each pair's angle is: a side's ends placed
    to `sigma_px` turn it by about sqrt(2) sigma_px / its length."""
    if len(sides) < 2:
        return None
    ends = np.array([[s.start, s.end] for s in sides], dtype=float)
    d = ends[:, 1] - ends[:, 0]
    length = np.hypot(d[:, 0], d[:, 1])
    kind = sides_of_a_kind(sides)
    pairs = np.array(list(combinations(range(len(sides)), 2)), dtype=int)
    square = kind[pairs[:, 0]] != kind[pairs[:, 1]]
    turn = np.sqrt(2.0) * sigma_px / length
    sigma = np.hypot(turn[pairs[:, 0]], turn[pairs[:, 1]])
    return Sides(ends, pairs, square, sigma)


def side_residuals(cam: F, sides: Sides, cx: float, cy: float) -> F:
    """(.., p) per pair, in sigmas, for camera rows cam (.., 3: elevation, log height, log focal):
    side i read on the plane, turned square if the pair is, has a vanishing point in the picture;
    side j's picture should run through it. The residual is the sine of the angle between side j
    and the ray from its middle to that point. Sides a camera puts above its horizon (on no plane)
    get a residual of a few sigmas, so that camera loses."""
    cam = np.asarray(cam)
    th = cam[..., 0, None, None]
    h, f = np.exp(cam[..., 1, None, None]), np.exp(cam[..., 2, None, None])
    u, v = sides.ends[..., 0], sides.ends[..., 1]  # (m, 2)
    x, y = ground(u, v, th, h, f, cx, cy)  # (.., m, 2)
    i, j = sides.pairs[:, 0], sides.pairs[:, 1]
    dx, dy = x[..., i, 1] - x[..., i, 0], y[..., i, 1] - y[..., i, 0]  # (.., p)
    dx, dy = np.where(sides.square, -dy, dx), np.where(sides.square, dx, dy)
    st, ct, f2 = np.sin(th[..., 0]), np.cos(th[..., 0]), f[..., 0]
    # the direction's vanishing point, homogeneous: the pinhole of (dx, dy, 0) at infinity
    xc, yc, zc = dx, -dy * st, dy * ct
    vx, vy, vz = f2 * xc + cx * zc, f2 * yc + cy * zc, zc
    mx, my = sides.ends[j].mean(axis=1).T  # (p,)
    wx, wy = vx - mx * vz, vy - my * vz
    e = sides.ends[j, 1] - sides.ends[j, 0]
    ex, ey = (e / np.hypot(e[:, 0], e[:, 1])[:, None]).T
    with np.errstate(invalid="ignore", divide="ignore"):
        sin = (ex * wy - ey * wx) / np.hypot(wx, wy)
    r = sin / sides.sigma
    return np.where(np.isfinite(r), r, OFF_PLANE_SIGMAS)
