"""Pixels per centimetre from objects whose real size is roughly known. Pure: no I/O, no torch.

Each detected object of a known kind votes `px / typical_cm` along the dimension least hurt by
perspective and occlusion. Votes are combined in log space (ratios, not differences, are what vary)
with a weighted median, outliers beyond a robust band are dropped, and the survivors are averaged.
The uncertainty joins the spread of the votes with each kind's natural size variation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mugpos.scene.geometry import surface_for
from mugpos.scene.model import Detection, Scale, Scene

Dim = Literal["width", "height", "max"]


@dataclass(frozen=True)
class KnownSize:
    cm: float  # typical real size along `dim`
    dim: Dim  # which box side to read: width (upright objects), height, or the longer side
    spread: float  # natural relative variation between real objects (1 sigma)
    reliability: float  # 0..1: how often the box really shows that size (orientation, occlusion)
    source: str


# Typical sizes. Cups: a standard 11 oz mug is ~8.2 cm across and ~9.5 cm tall (common retail
# mug specs); COCO "cup" boxes usually include the handle (+2.5-3.5 cm) and teacups/espresso cups
# are smaller, so 9.5 cm wide with a wide spread. Laptops: 13-15.6" models are 30-36 cm wide
# (manufacturer spec sheets). Keyboards: full-size ANSI ~44-45 cm, tenkeyless ~36 cm. Mice:
# ~6-7 cm wide x 10-12 cm long. Phones: ~7 x 15 cm (current 6.1-6.7" phones). Cutlery: dinner
# forks ~19-20 cm, table knives ~22-24 cm, tablespoons ~17-20 cm (catalogue sizes). Books:
# trade paperback 13x20 cm to hardcover 16x24 cm. Bottles: 0.5 l water ~21 cm, wine 30 cm.
# Wine glasses: ~18-22 cm tall. Bowls: cereal bowls ~14-16 cm. TV remotes: ~15-20 cm long.
# TVs and clocks vary far too much to be more than a weak hint.
KNOWN_SIZES: dict[str, KnownSize] = {
    "cup": KnownSize(9.5, "width", 0.18, 1.0, "11 oz mug 8.2 cm + handle; teacups smaller"),
    "laptop": KnownSize(33.0, "width", 0.10, 1.0, "13-15.6 inch laptops 30-36 cm wide"),
    "keyboard": KnownSize(44.0, "width", 0.15, 0.9, "full-size keyboard 44 cm, TKL 36 cm"),
    "mouse": KnownSize(6.5, "width", 0.15, 0.7, "computer mouse ~6-7 cm wide"),
    "cell phone": KnownSize(15.0, "max", 0.10, 0.6, "phones ~7 x 15 cm"),
    "fork": KnownSize(19.5, "max", 0.10, 0.6, "dinner fork 19-20 cm"),
    "knife": KnownSize(22.5, "max", 0.12, 0.6, "table knife 22-24 cm"),
    "spoon": KnownSize(18.0, "max", 0.15, 0.5, "tablespoon 17-20 cm"),
    "book": KnownSize(22.0, "max", 0.20, 0.5, "books 20-24 cm tall"),
    "bottle": KnownSize(23.0, "height", 0.25, 0.5, "0.5 l bottle 21 cm, wine 30 cm"),
    "wine glass": KnownSize(20.0, "height", 0.15, 0.6, "wine glasses 18-22 cm tall"),
    "bowl": KnownSize(15.0, "width", 0.25, 0.4, "cereal bowl 14-16 cm"),
    "remote": KnownSize(18.0, "max", 0.15, 0.5, "TV remotes 15-20 cm long"),
    "scissors": KnownSize(20.0, "max", 0.25, 0.4, "office scissors 17-23 cm"),
    "tv": KnownSize(100.0, "width", 0.40, 0.2, "32-55 inch TVs 71-123 cm wide"),
    "clock": KnownSize(30.0, "width", 0.35, 0.2, "wall clocks 25-35 cm"),
}

ASSUMED_SURFACE_CM = 120.0  # a typical desk or small dining table is 100-140 cm wide
ASSUMED_UNCERTAINTY_PCT = 50.0
BORDER_PX = 2.0  # a box this close to the image edge is probably cut off
OUTLIER_LOG_BAND = 0.35  # at least +-42 % from the median before a vote counts as an outlier


def _measure(obj: Detection, known: KnownSize, width: float, height: float) -> float | None:
    """The box side in pixels that `known` describes, or None when the image border cuts it."""
    x1, y1, x2, y2 = obj.box
    cut_x = x1 <= BORDER_PX or x2 >= width - BORDER_PX
    cut_y = y1 <= BORDER_PX or y2 >= height - BORDER_PX
    if known.dim == "width":
        return None if cut_x else obj.width
    if known.dim == "height":
        return None if cut_y else obj.height
    if cut_x or cut_y:
        return None
    return max(obj.width, obj.height)


def _weighted_median(values: list[float], weights: list[float]) -> float:
    pairs = sorted(zip(values, weights, strict=True))
    half = sum(weights) / 2
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= half:
            return v
    return pairs[-1][0]


def estimate_scale(scene: Scene) -> Scale:
    """The scale to use: the caller's `px_per_cm`, else an estimate from known sizes, else assumed."""
    if scene.px_per_cm is not None:
        return Scale(px_per_cm=scene.px_per_cm, source="given", note="px_per_cm given by the caller")
    w, h = float(scene.image.width), float(scene.image.height)
    votes: list[tuple[str, float, float, KnownSize]] = []  # id, log px/cm, precision weight, size
    confs: list[float] = []
    for obj in scene.objects:
        known = KNOWN_SIZES.get(obj.label)
        if known is None:
            continue
        px = _measure(obj, known, w, h)
        if px is None or px <= 0:
            continue
        weight = max(obj.confidence, 0.05) * known.reliability / known.spread**2
        assert obj.id is not None
        votes.append((obj.id, math.log(px / known.cm), weight, known))
        confs.append(obj.confidence)
    if not votes:
        return _assumed(scene)

    logs = [v[1] for v in votes]
    # The median votes by how much each object is trusted, not by its precision, so one precise
    # but wrong object (a misread laptop) cannot outvote several agreeing mugs.
    trust = [v[3].reliability * max(o, 0.05) for v, o in zip(votes, confs, strict=True)]
    med = _weighted_median(logs, trust)
    mad = _weighted_median([abs(x - med) for x in logs], trust)
    band = max(3 * 1.4826 * mad, OUTLIER_LOG_BAND)
    kept = [v for v in votes if abs(v[1] - med) <= band]
    total = sum(v[2] for v in kept)
    mean = sum(v[1] * v[2] for v in kept) / total
    spread = math.sqrt(sum(v[2] * (v[1] - mean) ** 2 for v in kept) / total)
    natural = math.sqrt(1.0 / sum(1.0 / v[3].spread ** 2 for v in kept))
    sigma = math.hypot(spread, natural)
    dropped = [v[0] for v in votes if v not in kept]
    used = ", ".join(f"{v[0]} ({v[3].cm:g} cm {v[3].dim})" for v in kept[:6])
    more = f" +{len(kept) - 6} more" if len(kept) > 6 else ""
    note = f"from typical sizes of {used}{more}"
    if dropped:
        note += f"; ignored as outliers: {', '.join(dropped)}"
    return Scale(
        px_per_cm=round(math.exp(mean), 4),
        source="estimated",
        uncertainty_pct=round(100 * (math.exp(sigma) - 1), 1),
        references=[v[0] for v in kept],
        note=note,
    )


def _assumed(scene: Scene) -> Scale:
    surface = surface_for(scene)
    width_px = surface.box[2] - surface.box[0]
    what = f"the table {surface.id}" if surface.id else "the image"
    return Scale(
        px_per_cm=round(width_px / ASSUMED_SURFACE_CM, 4),
        source="assumed",
        uncertainty_pct=ASSUMED_UNCERTAINTY_PCT,
        note=f"no object of known size; assumed {what} spans {ASSUMED_SURFACE_CM:g} cm "
        "(pass px_per_cm for real measurements)",
    )
