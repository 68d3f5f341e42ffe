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

import numpy as np

from mugpos.scene.camera import plane_to_image
from mugpos.scene.geometry import MugPosition, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scene
from mugpos.scene.sides import frame_borders

if TYPE_CHECKING:
    from PIL import Image

    from mugpos.settings import Settings

OBJECT = (0, 160, 230)
MUG = (255, 140, 0)
VIOLATION = (230, 30, 40)
SURFACE = (40, 190, 90)
TARGET = (40, 200, 80)
_MIME = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}


Rect = tuple[float, float, float, float]  # x1, y1, x2, y2: a tag's place on the picture


@lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable, offline (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def clear_of(r: Rect, taken: list[Rect]) -> bool:
    """Whether rectangle `r` (x1, y1, x2, y2) overlaps none of `taken` (tags already placed)."""
    return all(r[2] <= t[0] or r[0] >= t[2] or r[3] <= t[1] or r[1] >= t[3] for t in taken)


def _metrics(img: Image.Image) -> tuple[int, int]:
    """(line width, font size) for this image size."""
    side = max(img.size)
    return max(2, round(side / 320)), max(11, round(side / 48))


def _label(
    draw: Any,
    xy: tuple[float, float],
    text: str,
    colour: tuple[int, int, int],
    size: int,
    img_w: int,
    taken: list[Rect] | None = None,
) -> None:
    """Text on a filled tag, above the point if there is room, kept inside the image; with `taken`
    (the tags already drawn), the first of a few spots down from there that overlaps none of them
    (a busy table's tags would otherwise print over each other), then added to it."""
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = max(2, size // 5)
    x = min(max(xy[0], 0), max(img_w - tw - 2 * pad, 0))
    y = xy[1] - th - 2 * pad
    if y < 0:
        y = xy[1]
    step = th + 2 * pad + 1
    rect = (x, y, x + tw + 2 * pad, y + th + 2 * pad)
    if taken is not None:
        for k in range(8):
            r = (x, y + k * step, x + tw + 2 * pad, y + k * step + th + 2 * pad)
            if clear_of(r, taken):
                rect = r
                break
        taken.append(rect)
    draw.rectangle(rect, fill=colour)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    draw.text(
        (rect[0] + pad - left, rect[1] + pad - top),
        text,
        fill=(0, 0, 0) if luminance > 150 else (255, 255, 255),
        font=font,
    )


def _dashed_rect(draw: Any, box: Box, colour: tuple[int, ...], width: int) -> None:
    x1, y1, x2, y2 = box
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        dashed_line(draw, a, b, colour, width, dash=width * 4)


def dashed_line(
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


def _nearest_edge(mug: MugPosition) -> tuple[str, float] | None:
    """The nearest edge the photo shows, or None when it shows none (no table, or all cut)."""
    e = mug.edges_cm
    seen = [
        (n, v)
        for n, v in (("left", e.left), ("right", e.right), ("back", e.back), ("front", e.front))
        if v is not None
    ]
    return min(seen, key=lambda t: t[1]) if seen else None


def _draw_table(
    draw: Any,
    scene: Scene,
    lw: int,
    fs: int,
    img_w: int,
    r: float = 1.0,
    taken: list[Rect] | None = None,
) -> bool:
    """The measured table footprint in perspective, or the table's outline where the detector
    segmented it: edges the photo shows solid, cut ones dashed. False when the scene carries no
    measured table."""
    surf = scene.surface
    if surf is None:
        return False
    x1, y1, x2, y2 = surf.footprint_cm
    corners = {"fl": (x1, y1), "fr": (x2, y1), "br": (x2, y2), "bl": (x1, y2)}
    pts = plane_to_image(scene, list(corners.values()))
    if pts is None:
        return False
    pts = [(x * r, y * r) for x, y in pts]  # onto the picture as drawn (see `at_size`)
    p = dict(zip(corners, pts, strict=True))
    table = scene.get(surf.id) if surf.id else None
    if table is not None and table.outline:
        # Segmented: the table's own outline is what its sides were measured along (a turned desk
        # is no rectangle square to the picture); where it runs along the frame, it is dashed.
        ring = table.outline
        border = frame_borders(np.asarray(ring), scene.image.width, scene.image.height, 0.01)
        for i, (a, b) in enumerate(zip(ring, [*ring[1:], ring[0]], strict=True)):
            pa, pb = (a[0] * r, a[1] * r), (b[0] * r, b[1] * r)
            if (border[i] & border[(i + 1) % len(ring)]).any():
                dashed_line(draw, pa, pb, (150, 150, 150), max(1, lw // 2), dash=lw * 3)
            else:
                draw.line((*pa, *pb), fill=SURFACE, width=lw * 2)
    else:
        sides = {"front": ("fl", "fr"), "right": ("fr", "br"), "back": ("br", "bl"), "left": ("bl", "fl")}
        for name, (a, b) in sides.items():
            edge = surf.edges[name]  # type: ignore[index]
            if edge.seen:
                draw.line((*p[a], *p[b]), fill=SURFACE, width=lw * 2)
            else:
                dashed_line(draw, p[a], p[b], (150, 150, 150), max(1, lw // 2), dash=lw * 3)
    seen = [n for n, e in surf.edges.items() if e.seen]
    what = surf.id if surf.kind == "table" else "no table: region inferred"
    text = f"{what} | edges seen: {', '.join(seen) if seen else 'none'}"
    anchor = min(pts, key=lambda q: (q[1], q[0]))
    _label(draw, (max(anchor[0], 0), max(anchor[1], 0) + lw + fs * 1.4), text, SURFACE, fs, img_w, taken)
    return True


def at_size(image: Image.Image, max_side: int | None) -> tuple[Image.Image, float]:
    """A fresh RGB copy of the picture at the size it will be sent (never upscaled), and the factor
    applied: drawing there once costs less than drawing on a 12-megapixel photo and shrinking it."""
    from PIL import Image as PILImage

    im = image.convert("RGB") if image.mode != "RGB" else image
    if not max_side or max(im.size) <= max_side:
        return im.copy(), 1.0
    r = max_side / max(im.size)
    size = (max(1, round(im.width * r)), max(1, round(im.height * r)))
    return im.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0), r


def _sc(box: Box, r: float) -> Box:
    return (box[0] * r, box[1] * r, box[2] * r, box[3] * r)


def draw_analysis(
    image: Image.Image,
    scene: Scene,
    mugs: list[MugPosition],
    *,
    highlight_ids: Iterable[str] = (),
    notes: dict[str, str] | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """All objects boxed and labelled; mugs in orange with zone and distance to the nearest edge the
    photo shows; objects involved in a violation in red; the measured table footprint drawn in
    perspective, seen edges solid and edges the frame cuts dashed (else the surface box outlined).
    With `max_side`, drawn on the picture already shrunk to that size (boxes scaled), so encoding it
    needs no second resize."""
    from PIL import ImageDraw

    out, r = at_size(image, max_side)
    draw = ImageDraw.Draw(out)
    lw, fs = _metrics(out)
    hot = set(highlight_ids)
    notes = notes or {}
    by_id = {m.object_id: m for m in mugs}

    surface_ids = {m.surface_id for m in mugs if m.surface_id} or {surface_for(scene).id}
    taken: list[Rect] = []  # the tags drawn so far (`_label`)
    drawn = _draw_table(draw, scene, lw, fs, out.width, r, taken)
    for obj in scene.objects:
        if obj.label in SURFACE_LABELS and obj.id in surface_ids and not drawn:
            box = _sc(obj.box, r)
            _dashed_rect(draw, box, SURFACE, lw)
            _label(
                draw,
                (box[0] + lw, box[1] + lw + fs * 1.4),
                f"{obj.id} (surface)",
                SURFACE,
                fs,
                out.width,
                taken,
            )

    # Plain objects first, mugs and violations last so they sit on top.
    def rank(o: Any) -> int:
        return 2 if o.id in hot else 1 if o.id in by_id or o.is_mug else 0

    tags: list[tuple[int, tuple[float, float], str, tuple[int, int, int], int]] = []
    for obj in sorted((o for o in scene.objects if o.label not in SURFACE_LABELS), key=rank):
        colour = VIOLATION if obj.id in hot else MUG if (obj.id in by_id or obj.is_mug) else OBJECT
        width = lw * 2 if colour != OBJECT else lw
        box = _sc(obj.box, r)
        draw.rectangle(box, outline=colour, width=width)
        text = f"{obj.id} {obj.confidence:.2f}" if obj.confidence < 1.0 else f"{obj.id}"
        mug = by_id.get(obj.id or "")
        if mug is not None:
            near = _nearest_edge(mug)
            where = f"{near[1]:.0f} cm to {near[0]} edge" if near else "no table edge in view"
            text = f"{obj.id} | {mug.zone} | {where}"
        if obj.advisory is not None:
            text += f" | {obj.advisory.label}?"
        if obj.id in notes:
            text += f" | {notes[obj.id]}"
        tags.append(
            (rank(obj), (box[0], box[1]), text, colour, fs if colour != OBJECT else max(10, fs * 4 // 5))
        )
    # Tags after every box (none hidden under a box drawn later), the mugs' and violations' first:
    # they get the spot by their box, the rest move aside.
    for _rank, xy, text, colour, size in sorted(tags, key=lambda t: -t[0]):
        _label(draw, xy, text, colour, size, out.width, taken)
    return out


def draw_suggestions(
    image: Image.Image, scene: Scene, moves: list[Any], *, max_side: int | None = None
) -> Image.Image:
    """For each move (a Suggestion's dict, or (object id, from box, to box, text[, guides])): the mug,
    a numbered arrow to its target drawn in perspective, the rule's line or zone, labels that do not
    overlap, and the instructions in a legend under the photo (`mugpos.engine.moves_picture`), drawn
    at `max_side` (the size it is sent at)."""
    from mugpos.engine.moves_picture import draw_moves

    base, r = at_size(image, max_side)
    norm = []
    for m in moves:
        if not isinstance(m, dict):
            oid, fb, tb, text, *rest = m
            m = {"object_id": oid, "from_box": fb, "to_box": tb, "instruction": text,
                 "guides": rest[0] if rest else []}  # fmt: skip
        guides = [
            {**g, "points_px": [[x * r, y * r] for x, y in g["points_px"]]} for g in m.get("guides", [])
        ]
        norm.append({**m, "from_box": _sc(m["from_box"], r), "to_box": _sc(m["to_box"], r), "guides": guides})
    return draw_moves(base, scene, norm, scale=r)


def encode_image(img: Image.Image, settings: Settings, *, max_side: int | None = None) -> tuple[bytes, str]:
    """Downscale to the longest side limit and compress per settings: (bytes, mime type)."""
    from PIL import Image as PILImage

    limit = max_side or settings.annotated_max_side
    im = img.convert("RGB") if img.mode != "RGB" else img
    if max(im.size) > limit:
        ratio = limit / max(im.size)
        im = im.resize(
            (max(1, round(im.width * ratio)), max(1, round(im.height * ratio))),
            PILImage.Resampling.LANCZOS,
            reducing_gap=3.0,
        )
    fmt = settings.annotated_format
    buf = io.BytesIO()
    if fmt == "webp":
        im.save(buf, "WEBP", quality=settings.annotated_quality, method=4)
    elif fmt == "jpeg":
        # No Huffman optimisation: ~2 % smaller files for 3x the encoding time on every call.
        im.save(buf, "JPEG", quality=settings.annotated_quality)
    else:
        im.save(buf, "PNG", optimize=True)
    return buf.getvalue(), _MIME[fmt]
