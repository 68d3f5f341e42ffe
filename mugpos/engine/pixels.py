"""Any PIL colour mode -> 8-bit RGB, the one pixel format the detector, embedder and pictures use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mugpos.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: alpha composited on white, 16-bit scaled, CMYK converted."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa", "1;A") or (mode == "L" and "transparency" in im.info):
        im = im.convert("RGBA")
    elif mode.startswith("I;16") or mode == "I" or mode == "F":
        im = _gray8(im)
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    if im.mode == "RGB":
        return im
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageError(
            f"Images in colour mode {im.mode!r} are not supported ({e}).",
            hint="Convert the image to RGB (JPEG or PNG) and try again.",
            code="unsupported_image_mode",
        ) from None


def _gray8(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit L, scaling the full range (65535 -> 255)."""
    import numpy as np
    from PIL import Image

    if im.mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.float64) / 257.0
    elif im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if np.nanmax(arr, initial=0.0) <= 1.0:
            arr = arr * 255.0
    else:  # "I": 32-bit; 16-bit PNGs decode to it on some Pillow builds
        arr = np.asarray(im, dtype=np.float64)
        if np.nanmax(arr, initial=0.0) > 255:
            arr = arr / 257.0
    out = np.clip(np.nan_to_num(np.rint(arr)), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")
