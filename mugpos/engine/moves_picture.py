"""The suggestion picture: where each mug goes, drawn so a person can follow it on a phone.

Each move gets a numbered arrow from the mug to its target, the target drawn in perspective on the
table (the footprint's corners projected, from the suggestion's `guides`), and the line or zone the
rule is about (the half line, the keep-out zone around the laptop). Short labels sit where they
overlap nothing already drawn; the full instructions go in a numbered legend below the photo, in
text sized to the picture so it stays readable after downscaling.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from typing import TYPE_CHECKING, Any

from mugpos.engine.annotate import Rect, _font, clear_of, dashed_line
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scene

if TYPE_CHECKING:
    from PIL import Image

MUG = (255, 140, 0)
TARGET = (40, 200, 80)
KEEP_OUT = (230, 40, 50)
REACH = (60, 140, 255)
LINE = (255, 215, 0)
OBJECT = (0, 160, 230)


class Labels:
    """Places text tags so that none overlaps another or leaves the picture."""

    def __init__(self, draw: Any, width: int, height: int, size: int) -> None:
        self.draw, self.w, self.h, self.size = draw, width, height, size
        self.taken: list[Rect] = []

    def block(self, r: Rect) -> None:
        self.taken.append(r)

    def _free(self, r: Rect) -> bool:
        if r[0] < 0 or r[1] < 0 or r[2] > self.w or r[3] > self.h:
            return False
        return clear_of(r, self.taken)

    def put(self, anchors: list[tuple[float, float]], text: str, colour: tuple[int, int, int]) -> Rect | None:
        """The tag near the first anchor that has room around it (then the next: a mug filling the
        photo has none above its box, but may below or beside it); None when no anchor has any."""
        font = _font(self.size)
        left, top, right, bottom = self.draw.textbbox((0, 0), text, font=font)
        pad = max(2, self.size // 4)
        tw, th = right - left + 2 * pad, bottom - top + 2 * pad
        for ax, ay in anchors:
            for k in range(0, 12):
                for dx, dy in ((0, -1), (0, 1), (1, 0), (-1, 0), (1, -1), (-1, 1)):
                    x = ax - tw / 2 + dx * (tw / 2 + k * th * 0.6)
                    y = ay - th / 2 + dy * (th * 0.8 + k * th * 0.6)
                    r = (x, y, x + tw, y + th)
                    if self._free(r):
                        self._draw(r, text, colour, font, pad, left, top)
                        return r
        return None

    def _draw(
        self, r: Rect, text: str, colour: tuple[int, int, int], font: Any, pad: int, left: int, top: int
    ) -> None:
        self.draw.rectangle(r, fill=colour)
        lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        self.draw.text(
            (r[0] + pad - left, r[1] + pad - top),
            text,
            fill=(0, 0, 0) if lum > 150 else (255, 255, 255),
            font=font,
        )
        self.taken.append(r)


def _arrow(
    draw: Any, a: tuple[float, float], b: tuple[float, float], colour: tuple[int, ...], width: int
) -> None:
    length = math.dist(a, b)
    if length < 2:
        return
    head = min(max(width * 4, 12), length * 0.5)
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    base = (b[0] - ux * head, b[1] - uy * head)
    draw.line((a[0], a[1], base[0], base[1]), fill=(0, 0, 0), width=width + 4)
    draw.line((a[0], a[1], base[0], base[1]), fill=colour, width=width)
    nx, ny = -uy, ux
    half = head * 0.6
    tri = [b, (base[0] + nx * half, base[1] + ny * half), (base[0] - nx * half, base[1] - ny * half)]
    draw.polygon(tri, fill=colour, outline=(0, 0, 0))


def _dashed(draw: Any, pts: list[tuple[float, float]], colour: tuple[int, ...], width: int) -> None:
    for a, b in itertools.pairwise(pts):
        dashed_line(draw, a, b, colour, width, dash=width * 4)


def _centroid(pts: list[tuple[float, float]]) -> tuple[float, float]:
    return (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))


def _clip(pts: list[list[float]], w: int, h: int) -> list[tuple[float, float]]:
    lim = 4 * max(w, h)
    return [(min(max(p[0], -lim), lim), min(max(p[1], -lim), lim)) for p in pts]


def draw_moves(
    image: Image.Image, scene: Scene, moves: list[dict[str, Any]], *, scale: float = 1.0
) -> Image.Image:
    """moves: dicts with object_id, from_box, to_box, instruction and guides (see Suggestion), in the
    picture's pixels; `scale`: the picture's size over the scene's (for the other objects' boxes)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    base = image.convert("RGB")
    W, H = base.size
    side = max(W, H)
    lw, fs = max(2, round(side / 300)), max(14, round(side / 36))
    overlay = PILImage.new("RGBA", base.size, (0, 0, 0, 0))
    od = ImageDraw.Draw(overlay)
    for m in moves:
        for g in m.get("guides", []):
            pts = _clip(g["points_px"], W, H)
            if g["kind"] == "zone" and len(pts) >= 3:
                col = KEEP_OUT if g["label"].startswith("keep") else REACH
                od.polygon(pts, fill=(*col, 55))
            elif g["kind"] == "target" and len(pts) >= 3:
                od.polygon(pts, fill=(*TARGET, 110))
        if not any(g["kind"] == "target" for g in m.get("guides", [])):
            od.rectangle(m["to_box"], fill=(*TARGET, 90))  # no footprint: the box's ghost
    out = PILImage.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(out)
    labels = Labels(draw, W, H, fs)
    moved = {m["object_id"] for m in moves}
    for obj in scene.objects:
        if obj.label not in SURFACE_LABELS and obj.id not in moved:
            b = obj.box
            draw.rectangle(
                (b[0] * scale, b[1] * scale, b[2] * scale, b[3] * scale),
                outline=OBJECT,
                width=max(1, lw // 2),
            )
    pending: list[tuple[list[tuple[float, float]], str, tuple[int, int, int]]] = []
    for m in moves:
        for g in m.get("guides", []):
            pts = _clip(g["points_px"], W, H)
            if g["kind"] == "zone" and len(pts) >= 3:
                col = KEEP_OUT if g["label"].startswith("keep") else REACH
                draw.line([*pts, pts[0]], fill=col, width=lw)
                pending.append(([_top(pts)], g["label"], col))
            elif g["kind"] == "line" and len(pts) >= 2:
                _dashed(draw, pts, (0, 0, 0), lw + 3)
                _dashed(draw, pts, LINE, lw + 1)
                pending.append(([_centroid(pts)], g["label"], LINE))
    for n, m in enumerate(moves, 1):
        fb, tb = m["from_box"], m["to_box"]
        target = next((g for g in m.get("guides", []) if g["kind"] == "target"), None)
        tpts = (
            _clip(target["points_px"], W, H)
            if target
            else [(tb[0], tb[1]), (tb[2], tb[1]), (tb[2], tb[3]), (tb[0], tb[3])]
        )
        if target:
            draw.line([*tpts, tpts[0]], fill=TARGET, width=lw + 1)
        draw.rectangle(fb, outline=MUG, width=lw * 2)
        a = ((fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2)
        b = _centroid(tpts)
        _arrow(draw, a, b, TARGET, lw * 2)
        labels.block((fb[0], fb[1], fb[2], fb[3]))
        labels.block(box_of([list(p) for p in tpts]))
        pending.insert(0, ([b], f" {n} ", TARGET))
        cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2
        beside = [(cx, fb[1]), (cx, fb[3]), (fb[0], cy), (fb[2], cy)]  # above, below, left, right
        pending.insert(0, (beside, f"{n} {m['object_id']}", MUG))
    ys = [m["from_box"][3] for m in moves] + [m["to_box"][3] for m in moves]
    at_top = bool(ys) and sum(ys) / len(ys) > H / 2
    legend = _legend_layout(out, [f"{n}. {m['instruction']}" for n, m in enumerate(moves, 1)], fs, at_top)
    if legend is not None:
        labels.block(legend[1])  # the panel covers its band: no tag may hide under it
    said: set[str] = set()
    for anchors, text, col in pending:
        if text not in said:  # one tag per distinct label: five zones around people say it once
            said.add(text)
            labels.put(anchors, text, col)
    return _legend(out, legend, fs)


def _top(pts: list[tuple[float, float]]) -> tuple[float, float]:
    p = min(pts, key=lambda q: q[1])
    return (p[0], p[1])


def _legend_layout(
    img: Image.Image, lines: list[str], fs: int, at_top: bool
) -> tuple[list[str], Rect] | None:
    """The legend's wrapped lines and the band it covers, across the top or bottom of the photo
    (away from the mugs); known before the tags are placed, so none lands under it."""
    if not lines:
        return None
    chars = max(24, int(img.width / (fs * 0.55)))
    wrapped = [w for line in lines for w in textwrap.wrap(line, chars, subsequent_indent="   ")][:8]
    band = min(int(fs * 1.3) * len(wrapped) + fs // 2, img.height // 2)
    y0 = 0 if at_top else img.height - band
    return wrapped, (0, y0, img.width, y0 + band)


def _legend(img: Image.Image, legend: tuple[list[str], Rect] | None, fs: int) -> Image.Image:
    """The instructions in full, numbered, on a white panel over the legend's band, so the picture
    keeps the size it is sent at."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    if legend is None:
        return img
    wrapped, band = legend
    panel = PILImage.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(panel).rectangle(band, fill=(255, 255, 255, 225))
    out = PILImage.alpha_composite(img.convert("RGBA"), panel).convert("RGB")
    d = ImageDraw.Draw(out)
    font = _font(fs)
    y = band[1] + fs // 4
    for w in wrapped:
        d.text((fs // 2, y), w, fill=(0, 0, 0), font=font)
        y += int(fs * 1.3)
    return out


def box_of(points: list[list[float]]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))
