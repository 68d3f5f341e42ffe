"""The report card drawn here with Pillow: the same layers as the Templated.io template, offline.

1200x675 (16:9): the annotated photo on the left, a panel on the right with the title, a status
bar in the verdict's colour, one line per rule, the move, the summary and a footer. Text wraps
to the panel; the photo keeps its aspect ratio on a neutral background.
"""

from __future__ import annotations

import io
import textwrap
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from mugpos.reports.card import ReportCard

WIDTH, HEIGHT = 1200, 675
PHOTO_W = 720
PAD = 28
INK, MUTED, PANEL, PHOTO_BG = (33, 33, 33), (97, 97, 97), (250, 250, 247), (38, 40, 43)


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> Any:
    for path in (
        f"/usr/share/fonts/truetype/dejavu/DejaVuSans{'-Bold' if bold else ''}.ttf",
        f"/usr/share/fonts/truetype/liberation/LiberationSans-{'Bold' if bold else 'Regular'}.ttf",
    ):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # Pillow's own scalable font: no system fonts needed


def _hex(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> list[str]:
    """Greedy wrap by measured width (not characters), so any font fits the panel."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        words, line = para.split(" "), ""
        for word in words:
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def render_local(card: ReportCard, photo: bytes | None) -> bytes:
    """The card as PNG bytes."""
    img = Image.new("RGB", (WIDTH, HEIGHT), PANEL)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, PHOTO_W, HEIGHT), fill=PHOTO_BG)
    if photo:
        pic = Image.open(io.BytesIO(photo)).convert("RGB")
        pic.thumbnail((PHOTO_W - 2 * PAD, HEIGHT - 2 * PAD))
        img.paste(pic, ((PHOTO_W - pic.width) // 2, (HEIGHT - pic.height) // 2))
    else:
        draw.text(
            (PHOTO_W // 2, HEIGHT // 2), "no picture", fill=(160, 160, 160), font=_font(22), anchor="mm"
        )
    x, width = PHOTO_W + PAD, WIDTH - PHOTO_W - 2 * PAD
    y = PAD
    draw.text((x, y), card.title, fill=INK, font=_font(30, bold=True))
    y += 50
    draw.rounded_rectangle((x, y, x + width, y + 44), radius=8, fill=_hex(card.colour))
    draw.text(
        (x + 14, y + 22), card.status_text, fill=(255, 255, 255), font=_font(22, bold=True), anchor="lm"
    )
    y += 62
    for line in card.verdicts or ["No rules were checked."]:
        for i, part in enumerate(_wrap(draw, line, _font(18), width)):
            draw.text((x + (0 if i == 0 else 18), y), part, fill=INK, font=_font(18))
            y += 25
        y += 4
    if card.move:
        y += 8
        draw.text((x, y), "Move", fill=INK, font=_font(20, bold=True))
        y += 28
        for part in _wrap(draw, card.move, _font(18), width):
            draw.text((x, y), part, fill=INK, font=_font(18))
            y += 25
    y += 10
    footer_y = HEIGHT - PAD - 18
    for part in _wrap(draw, textwrap.shorten(card.summary, 400), _font(15), width):
        if y > footer_y - 26:
            break
        draw.text((x, y), part, fill=MUTED, font=_font(15))
        y += 21
    draw.text((x, footer_y), card.footer, fill=MUTED, font=_font(13))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
