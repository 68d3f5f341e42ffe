"""Annotated pictures: what was seen and where to move things, drawn with PIL alone.

Ultralytics' own plotting fetches a font over the network, so boxes, labels and arrows are drawn
here with PIL's built-in scalable font. Line widths and text sizes follow the image size so the
picture still reads after it is downscaled to travel inside an MCP result.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mugpos.scene.geometry import MugPosition, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scene

if TYPE_CHECKING:
    from PIL import Image

    from mugpos.settings import Settings

OBJECT = (0, 160, 230)
MUG = (255, 140, 0)
VIOLATION = (230, 30, 40)
SURFACE = (40, 190, 90)
TARGET = (40, 200, 80)
_MIME = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}


@lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable, offline (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _metrics(img: Image.Image) -> tuple[int, int]:
    """(line width, font size) for this image size."""
    side = max(img.size)
    return max(2, round(side / 320)), max(11, round(side / 48))


def _label(
    draw: Any, xy: tuple[float, float], text: str, colour: tuple[int, int, int], size: int, img_w: int
) -> None:
    """Text on a filled tag, above the point if there is room, kept inside the image."""
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = max(2, size // 5)
    x = min(max(xy[0], 0), max(img_w - tw - 2 * pad, 0))
    y = xy[1] - th - 2 * pad
    if y < 0:
        y = xy[1]
    draw.rectangle((x, y, x + tw + 2 * pad, y + th + 2 * pad), fill=colour)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    draw.text(
        (x + pad - left, y + pad - top),
        text,
        fill=(0, 0, 0) if luminance > 150 else (255, 255, 255),
        font=font,
    )


def _dashed_rect(draw: Any, box: Box, colour: tuple[int, ...], width: int) -> None:
    x1, y1, x2, y2 = box
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        _dashed_line(draw, a, b, colour, width, dash=width * 4)


def _dashed_line(
    draw: Any, a: tuple[float, float], b: tuple[float, float], colour: tuple[int, ...], width: int, dash: int
) -> None:
    length = math.dist(a, b)
    if length == 0:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        draw.line(
            (a[0] + ux * pos, a[1] + uy * pos, a[0] + ux * end, a[1] + uy * end), fill=colour, width=width
        )
        pos += 2 * dash


def _arrow(
    draw: Any, a: tuple[float, float], b: tuple[float, float], colour: tuple[int, ...], width: int
) -> None:
    length = math.dist(a, b)
    if length < 1:
        return
    head = min(max(width * 5, 10), length * 0.5)
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    base = (b[0] - ux * head, b[1] - uy * head)
    draw.line((a[0], a[1], base[0], base[1]), fill=colour, width=width)
    nx, ny = -uy, ux
    half = head * 0.55
    draw.polygon(
        [b, (base[0] + nx * half, base[1] + ny * half), (base[0] - nx * half, base[1] - ny * half)],
        fill=colour,
    )


def _nearest_edge(mug: MugPosition) -> tuple[str, float]:
    e = mug.edges_cm
    name, value = min(
        (("left", e.left), ("right", e.right), ("back", e.back), ("front", e.front)), key=lambda t: t[1]
    )
    return name, value


def draw_analysis(
    image: Image.Image,
    scene: Scene,
    mugs: list[MugPosition],
    *,
    highlight_ids: Iterable[str] = (),
    notes: dict[str, str] | None = None,
) -> Image.Image:
    """All objects boxed and labelled; mugs in orange with zone and nearest-edge distance; objects
    involved in a violation in red; the supporting surface outlined."""
    from PIL import ImageDraw

    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    lw, fs = _metrics(out)
    hot = set(highlight_ids)
    notes = notes or {}
    by_id = {m.object_id: m for m in mugs}

    surface_ids = {m.surface_id for m in mugs if m.surface_id} or {surface_for(scene).id}
    for obj in scene.objects:
        if obj.label in SURFACE_LABELS and obj.id in surface_ids:
            _dashed_rect(draw, obj.box, SURFACE, lw)
            _label(
                draw,
                (obj.box[0] + lw, obj.box[1] + lw + fs * 1.4),
                f"{obj.id} (surface)",
                SURFACE,
                fs,
                out.width,
            )

    # Plain objects first, mugs and violations last so they sit on top.
    def rank(o: Any) -> int:
        return 2 if o.id in hot else 1 if o.id in by_id or o.is_mug else 0

    for obj in sorted((o for o in scene.objects if o.label not in SURFACE_LABELS), key=rank):
        colour = VIOLATION if obj.id in hot else MUG if (obj.id in by_id or obj.is_mug) else OBJECT
        width = lw * 2 if colour != OBJECT else lw
        draw.rectangle(obj.box, outline=colour, width=width)
        text = f"{obj.id} {obj.confidence:.2f}" if obj.confidence < 1.0 else f"{obj.id}"
        mug = by_id.get(obj.id or "")
        if mug is not None:
            edge, cm = _nearest_edge(mug)
            text = f"{obj.id} | {mug.zone} | {cm:.0f} cm to {edge} edge"
        if obj.advisory is not None:
            text += f" | {obj.advisory.label}?"
        if obj.id in notes:
            text += f" | {notes[obj.id]}"
        _label(
            draw,
            (obj.box[0], obj.box[1]),
            text,
            colour,
            fs if colour != OBJECT else max(10, fs * 4 // 5),
            out.width,
        )
    return out


def draw_suggestions(image: Image.Image, scene: Scene, moves: list[Any]) -> Image.Image:
    """For each move (a Suggestion's dict, or (object id, from box, to box, text[, guides])): the mug,
    a numbered arrow to its target drawn in perspective, the rule's line or zone, labels that do not
    overlap, and the instructions in a legend under the photo (`mugpos.engine.moves_picture`)."""
    from mugpos.engine.moves_picture import draw_moves

    norm = []
    for m in moves:
        if isinstance(m, dict):
            norm.append(m)
        else:
            oid, fb, tb, text, *rest = m
            norm.append({"object_id": oid, "from_box": fb, "to_box": tb, "instruction": text,
                         "guides": rest[0] if rest else []})  # fmt: skip
    return draw_moves(image, scene, norm)


def encode_image(img: Image.Image, settings: Settings, *, max_side: int | None = None) -> tuple[bytes, str]:
    """Downscale to the longest side limit and compress per settings: (bytes, mime type)."""
    from PIL import Image as PILImage

    limit = max_side or settings.annotated_max_side
    im = img.convert("RGB") if img.mode != "RGB" else img
    if max(im.size) > limit:
        ratio = limit / max(im.size)
        im = im.resize(
            (max(1, round(im.width * ratio)), max(1, round(im.height * ratio))), PILImage.Resampling.LANCZOS
        )
    fmt = settings.annotated_format
    buf = io.BytesIO()
    if fmt == "webp":
        im.save(buf, "WEBP", quality=settings.annotated_quality, method=4)
    elif fmt == "jpeg":
        im.save(buf, "JPEG", quality=settings.annotated_quality, optimize=True)
    else:
        im.save(buf, "PNG", optimize=True)
    return buf.getvalue(), _MIME[fmt]
