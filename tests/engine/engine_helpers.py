"""Small builders shared by the engine tests (a uniquely named module: tests/ folders are not packages)."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(mode: str = "RGB", size: tuple[int, int] = (32, 24), color: object = (200, 30, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")  # type: ignore[arg-type]
    return buf.getvalue()
