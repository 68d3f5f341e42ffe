"""The camera's focal length from a photo's EXIF, as a 35 mm-equivalent focal length.

The plane fit (`mugpos.scene.plane`) needs the focal length in pixels; EXIF gives it either directly
as `FocalLengthIn35mmFilm` (tag 0xA405, what phones write) or as the real `FocalLength` (0x920A)
with the sensor's `FocalPlaneXResolution` (0xA20E) and unit (0xA210), from which pixels per mm on
the sensor follow. Both become one number, the 35 mm equivalent, which `ImageInfo.focal_35mm`
carries through storage. Anything missing, zero or unreadable gives None: the fit then uses its
documented prior.
"""

from __future__ import annotations

import io
import math
from typing import Any

EXIF_IFD = 0x8769
FOCAL_35MM = 0xA405
FOCAL_LENGTH = 0x920A
FOCAL_PLANE_X_RES = 0xA20E
FOCAL_PLANE_UNIT = 0xA210
PIXEL_X_DIMENSION = 0xA002
UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, cm, mm, micrometre
DIAGONAL_35MM = 43.27  # mm, the diagonal of a 36 x 24 mm frame


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def focal_35mm_from_exif(exif: Any, width: int, height: int) -> float | None:
    """`exif`: a PIL `Image.Exif`; width, height: the picture's size in pixels."""
    try:
        ifd = exif.get_ifd(EXIF_IFD)
    except Exception:
        return None
    eq = _num(ifd.get(FOCAL_35MM))
    if eq is not None:
        return eq
    focal = _num(ifd.get(FOCAL_LENGTH))
    res = _num(ifd.get(FOCAL_PLANE_X_RES))
    unit = UNIT_MM.get(int(ifd.get(FOCAL_PLANE_UNIT, 2) or 2))
    if focal is None or res is None or unit is None:
        return None
    px_per_mm = res / unit
    orig_w = _num(ifd.get(PIXEL_X_DIMENSION)) or float(max(width, height))
    focal_px = focal * px_per_mm * max(width, height) / orig_w
    return round(focal_px * DIAGONAL_35MM / math.hypot(width, height), 2)


def read_focal_35mm(data: bytes) -> float | None:
    """The 35 mm-equivalent focal length of encoded image bytes (headers only; None if absent)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return focal_35mm_from_exif(im.getexif(), *im.size)
    except Exception:  # no EXIF, or a broken block: the fit's prior will do
        return None
