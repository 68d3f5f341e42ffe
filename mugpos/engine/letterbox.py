"""Fit every picture into one of a few canvas shapes before detection, and map boxes back.

Ultralytics only letterboxes a batch tightly when every image in it has the same shape; mixed shapes
are padded to a square, which costs more than batching saves. Scaling each picture so its long side
is the detector's input size and padding the short side up to one of a few buckets (3:5, 3:4, 1:1)
lets photos of different sizes share one forward pass, at most a little padding each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mugpos.scene.model import Detection

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

SHORT_SIDE_BUCKETS = (0.6, 0.75, 1.0)  # short side / long side of the canvas
PAD_VALUE = 114  # Ultralytics' own letterbox grey


@dataclass(frozen=True)
class Fitted:
    array: np.ndarray  # canvas, RGB uint8, the picture at its top-left
    scale: float  # canvas pixels per original pixel
    width: int  # original size
    height: int


def canvas_shape(width: int, height: int, side: int) -> tuple[int, int, float]:
    """(canvas width, canvas height, scale) for a picture of this size."""
    scale = side / max(width, height)
    short = min(width, height) * scale
    bucket = next((b for b in SHORT_SIDE_BUCKETS if short <= round(b * side)), 1.0)
    short_px = round(bucket * side)
    return (side, short_px, scale) if width >= height else (short_px, side, scale)


def fit(image: Image.Image, side: int) -> Fitted:
    import cv2  # OpenCV comes with Ultralytics; its resize is the one the detector was trained with
    import numpy as np

    w, h = image.size
    cw, ch, scale = canvas_shape(w, h, side)
    nw, nh = min(cw, max(1, round(w * scale))), min(ch, max(1, round(h * scale)))
    pixels = np.asarray(image)
    if (nw, nh) != (w, h):
        pixels = cv2.resize(pixels, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if (nw, nh) == (cw, ch):
        return Fitted(pixels, scale, w, h)
    canvas = np.full((ch, cw, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:nh, :nw] = pixels
    return Fitted(canvas, scale, w, h)


def unfit(detections: list[Detection], fitted: Fitted) -> list[Detection]:
    """Boxes on the canvas -> boxes on the original picture (clipped; empty ones dropped)."""
    out = []
    for d in detections:
        x1, y1, x2, y2 = (round(min(max(v / fitted.scale, 0.0), lim), 1)
                          for v, lim in zip(d.box, (fitted.width, fitted.height) * 2, strict=True))  # fmt: skip
        if x2 > x1 and y2 > y1:
            out.append(d.model_copy(update={"box": (x1, y1, x2, y2)}))
    return out
