"""Footprints on the table plane and the gaps between them.

A footprint is a rectangle (K samples, cm); a round object's has rounded corners (its radius), and a
box-shaped one may be turned inside it (`_turn_of`: a turned keyboard's bounding rect is squarer
than a keyboard). Gaps are between those shapes: rounded rectangles (`_rect_gap`) or convex
polygons (`_poly_gap`), vectorised over the samples. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from mugpos.scene.camera import F


def _shrink(rect: F, r: F) -> F:
    """Rects (K, 4) made smaller by r on every side (the centres of their rounded corners)."""
    return rect + np.column_stack([r, r, -r, -r])


def _rect_gap(ia: F, ib: F, ra: F, rb: F) -> F:
    """Gaps (K,) between rects (K, 4) rounded by ra, rb (given shrunk by their radii)."""
    dx = np.maximum(np.maximum(ib[:, 0] - ia[:, 2], ia[:, 0] - ib[:, 2]), 0.0)
    dy = np.maximum(np.maximum(ib[:, 1] - ia[:, 3], ia[:, 1] - ib[:, 3]), 0.0)
    return np.maximum(np.hypot(dx, dy) - ra - rb, 0.0)


MAX_TURN = np.radians(40.0)  # past this a rectangle's bounding rect no longer pins its sides


def _turn_of(aspect: float, stretch: F) -> F:
    """How far (radians, unsigned) a rectangle of the prior's aspect (width / depth) is turned when
    its bounding rect is `stretch`^2 times that aspect: a turn makes a long thin thing's bounding
    rect squarer, and nothing else a box shows does so as simply. A bounding rect further from
    square than the prior's is an object of another aspect, not a turned one: no turn."""
    q = aspect * np.asarray(stretch, float) ** 2
    if abs(aspect - 1.0) < 1e-6:
        return np.zeros(q.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (aspect - q) / (q * aspect - 1.0)
    return np.arctan(np.clip(np.nan_to_num(t, nan=0.0), 0.0, np.tan(MAX_TURN)))


def _core(rect: F, r: F, turn: F | None) -> F:
    """Footprint polygons (K, 4, 2): a rect shrunk by r, or the rectangle turned by `turn` (signed)
    whose bounding rect is `rect`."""
    x1, y1, x2, y2 = (rect[:, k] for k in range(4))
    if turn is None:
        x1, y1, x2, y2 = x1 + r, y1 + r, x2 - r, y2 - r
        return np.stack([np.stack(p, -1) for p in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], axis=1)
    c, s = np.cos(turn), np.sin(np.abs(turn))
    bw, bd = x2 - x1, y2 - y1
    den = np.maximum(c * c - s * s, 1e-6)
    w = np.maximum((bw * c - bd * s) / den, 0.0)
    d = np.maximum((bd * c - bw * s) / den, 0.0)
    hx, hy = np.array([1, 1, -1, -1]) * 0.5, np.array([-1, 1, 1, -1]) * 0.5
    lx, ly = hx[None] * w[:, None], hy[None] * d[:, None]  # (K, 4) corners in the object's frame
    sn = np.sin(turn)[:, None]
    cn = c[:, None]
    px = ((x1 + x2) / 2)[:, None] + lx * cn - ly * sn
    py = ((y1 + y2) / 2)[:, None] + lx * sn + ly * cn
    return np.stack([px, py], axis=-1)


def _poly_gap(p: F, q: F, rp: F, rq: F) -> F:
    """Gaps (K,) between convex polygons (K, 4, 2) rounded by rp, rq: 0 when their sides cross or
    one holds the other, else the nearest vertex-to-side distance, less both radii."""

    def edges(a: F) -> tuple[F, F]:
        return a, np.roll(a, -1, axis=1)

    def cross(o: F, a: F, b: F) -> F:  # z of (a - o) x (b - o)
        ao, bo = a - o, b - o
        return ao[..., 0] * bo[..., 1] - ao[..., 1] * bo[..., 0]

    def pt_seg(pts: F, a: F, b: F) -> F:  # (K, m, 2) points to (K, n) segments -> (K, m, n)
        ab = (b - a)[:, None]
        ap = pts[:, :, None] - a[:, None]
        t = np.clip(np.sum(ap * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
        return np.hypot(*np.moveaxis(ap - t[..., None] * ab, -1, 0))

    pa, pb = edges(p)
    qa, qb = edges(q)
    dist = np.minimum(pt_seg(p, qa, qb).min((1, 2)), pt_seg(q, pa, pb).min((1, 2)))
    # sides crossing: each side's ends on opposite sides of the other's line
    d1 = cross(qa[:, None], qb[:, None], pa[:, :, None])
    d2 = cross(qa[:, None], qb[:, None], pb[:, :, None])
    d3 = cross(pa[:, :, None], pb[:, :, None], qa[:, None])
    d4 = cross(pa[:, :, None], pb[:, :, None], qb[:, None])
    crossing = np.any((d1 * d2 < 0) & (d3 * d4 < 0), axis=(1, 2))

    def inside(pt: F, a: F, b: F) -> F:  # (K, 2) point in convex (K, n) sides, either winding
        c = cross(a, b, pt[:, None])
        area = np.abs(np.sum(a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1], 1))
        return (area > 1e-9) & (np.all(c >= -1e-9, 1) | np.all(c <= 1e-9, 1))

    held = inside(p[:, 0], qa, qb) | inside(q[:, 0], pa, pb)
    return np.maximum(np.where(crossing | held, 0.0, dist) - rp - rq, 0.0)
