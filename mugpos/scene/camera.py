"""A pinhole camera above a flat table: projecting table-frame points and back-projecting pixels.

The camera stands `h` cm above the table plane (z = 0) at the origin of table coordinates (x to the
right, y away from the camera, z up) and looks along +y, tilted down by the elevation `theta`
(radians; pi/2 looks straight down). Focal length `f` in pixels, principal point (cx, cy) at the
image centre, square pixels, no roll. These are the assumptions of Criminisi, Reid & Zisserman's
single-view metrology with a level horizon; a phone held by a seated person rarely rolls more than
a few degrees, and the fit's residuals absorb that.

Every function broadcasts over leading array dimensions (samples, objects, points), so the plane fit
and the uncertainty sampling of `mugpos.scene.plane` share one implementation. Pure numpy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]

if TYPE_CHECKING:
    from mugpos.scene.model import Scene


def camera_frame(x: F, y: F, z: F, theta: ArrayLike, h: ArrayLike) -> tuple[F, F, F]:
    """Table-frame points -> the camera's frame (x right, y down the picture, z along the view
    axis), for a camera `h` above the table looking down by `theta`: the pinhole before division,
    which `project` divides and the box model differentiates."""
    st, ct = np.sin(theta), np.cos(theta)
    dz = z - h
    return x, -y * st - dz * ct, y * ct - dz * st


def project(
    x: ArrayLike,
    y: ArrayLike,
    z: ArrayLike,
    theta: ArrayLike,
    h: ArrayLike,
    f: ArrayLike,
    cx: float,
    cy: float,
) -> tuple[F, F, F]:
    """Table-frame points -> (u, v, depth): pixel column and row, and the distance along the view axis.

    Points at or behind the camera (depth <= 0) get a tiny positive depth, so they land far outside
    the picture instead of flipping; callers treat them as out of frame.
    """
    x, y, z = (np.asarray(a, dtype=float) for a in (x, y, z))
    xc, yc, zc = camera_frame(x, y, z, theta, h)
    zc_safe = np.maximum(zc, 1e-3)
    return cx + f * xc / zc_safe, cy + f * yc / zc_safe, zc


def ground(
    u: ArrayLike, v: ArrayLike, theta: ArrayLike, h: ArrayLike, f: ArrayLike, cx: float, cy: float
) -> tuple[F, F]:
    """Pixels -> the table-plane point (x, y) they show. Rows at or above the horizon have none: the
    ray never meets the table, so y is +inf there (a point 'infinitely far back')."""
    xn = (np.asarray(u, dtype=float) - cx) / f
    yn = (np.asarray(v, dtype=float) - cy) / f
    st, ct = np.sin(theta), np.cos(theta)
    denom = yn * ct + st
    ok = denom > 1e-6
    t = np.where(ok, h / np.where(ok, denom, 1.0), np.inf)
    with np.errstate(invalid="ignore"):
        x = np.where(ok, t * xn, np.sign(xn) * np.inf)
        y = np.where(ok, t * (ct - yn * st), np.inf)
    return x, y


def horizon_row(theta: float, f: float, cy: float) -> float | None:
    """The image row of the horizon (v where the table plane vanishes); None for a top-down view."""
    if theta >= np.pi / 2 - 1e-6:
        return None
    return float(cy - f * np.tan(theta))


def px_per_cm_at(v: ArrayLike, theta: ArrayLike, h: ArrayLike, f: ArrayLike, cx: float, cy: float) -> F:
    """Horizontal scale on the table at image row v: pixels per cm of a small x-step there (NaN at
    or above the horizon). Broadcasts like the rest, so every sample of a fit is one call."""
    _, y = ground(cx, v, theta, h, f, cx, cy)
    ok = np.isfinite(y)
    u1, _, _ = project(1.0, np.where(ok, y, 0.0), 0.0, theta, h, f, cx, cy)
    return np.where(ok, u1 - cx, np.nan)


def focal_from_35mm(focal_35mm: float, width: int, height: int) -> float:
    """35 mm-equivalent focal length -> pixels, matched on the diagonal (43.27 mm), as the
    equivalence is defined (CIPA DC-008 / phones' EXIF) for any aspect ratio."""
    return float(focal_35mm * np.hypot(width, height) / 43.27)


def plane_to_image(scene: Scene, points: list[tuple[float, float]]) -> list[tuple[float, float]] | None:
    """Table-plane points (cm) -> where they appear in the photo (px), by the scene's measured
    plane; None when the scene has none or a point lies behind the camera. Here, beside `project`,
    and not with the plane fit: drawing a picture needs no scipy."""
    plane = scene.plane
    if plane is None:
        return None
    w, h = scene.image.width, scene.image.height
    xs = np.array([p[0] for p in points], dtype=float)
    ys = np.array([p[1] for p in points], dtype=float)
    if plane.kind == "top_down":
        ppc = plane.px_per_cm.value
        return [(float(x * ppc), float(h - y * ppc)) for x, y in zip(xs, ys, strict=True)]
    th = math.radians(plane.elevation_deg.value)
    u, v, depth = project(xs, ys, 0.0, th, plane.camera_height_cm.value, plane.focal_px.value, w / 2, h / 2)
    if (depth <= 1e-3).any():
        return None
    return [(float(a), float(b)) for a, b in zip(u, v, strict=True)]
