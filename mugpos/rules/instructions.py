"""A move said the way a person can follow it: direction and distance, a landmark, an edge.

"Move the mug 14 cm to the right and 5 cm back, to 6 cm right of the laptop, about 10 cm from the
front edge". Distances are on the table plane; inches follow in brackets when a rule used inches.
The landmark is an object the rules name if one is near the target, else the nearest object, else
the table's edges.
"""

from __future__ import annotations

import re

import numpy as np

from mugpos.rules.model import Rule
from mugpos.rules.placement import Ctx
from mugpos.scene.labels import MUG_LABELS, SURFACE_LABELS

_INCHY = re.compile(
    r"(?:\d|\ba|\bhalf|\bquarter)\s*(?:-\s*)?(?:in\b|inch|inches|\"|ft\b|feet|foot|')", re.IGNORECASE
)
_NOUN = {
    "cup": "mug",
    "cell phone": "phone",
    "tv": "screen",
    "dining table": "table",
    "potted plant": "plant",
}


def noun(label: str) -> str:
    return _NOUN.get(label, label)


def uses_inches(rules: list[Rule]) -> bool:
    return any(_INCHY.search(r.text or "") for r in rules)


def length(cm: float, inches: bool) -> str:
    a = abs(cm)
    text = f"{a:.0f} cm" if a >= 1.5 else f"{a:.1f} cm"
    if inches:
        i = a / 2.54
        text += f" ({i:.0f} in)" if i >= 1.5 else f" ({i:.1f} in)"
    return text


def _landmark(ctx: Ctx, target: tuple[float, ...], rules: list[Rule]) -> tuple[str, str] | None:
    """(phrase, object id) placing the target relative to a nearby object."""
    t = np.array(target)
    cands = [
        i for i, lab in ctx.labels.items() if i != ctx.mug_id and i in ctx.rects and lab not in SURFACE_LABELS
    ]
    if not cands:
        return None
    named = {i for r in rules if r.target is not None for i in ctx.members(r.target)}

    def gap(i: str) -> float:
        r = ctx.rects[i]
        dx = max(r[0] - t[2], t[0] - r[2], 0.0)
        dy = max(r[1] - t[3], t[1] - r[3], 0.0)
        return float(np.hypot(dx, dy))

    # a landmark stays put and is easy to see: not a person or an animal, not another mug if avoidable
    def rank(i: str) -> tuple[bool, bool, bool, bool, float, str]:
        lab = ctx.labels[i]
        moving = lab in ("person", "cat", "dog", "bird")
        return (moving, gap(i) > 40, lab in MUG_LABELS, i not in named, gap(i), i)

    near = sorted(cands, key=rank)
    i = near[0]
    r, name = ctx.rects[i], noun(ctx.labels[i])
    inches = ctx.extra.get("inches", False)
    if t[0] >= r[2] - 1e-6:
        return f"{length(t[0] - r[2], inches)} right of the {name}", i
    if t[2] <= r[0] + 1e-6:
        return f"{length(r[0] - t[2], inches)} left of the {name}", i
    if t[1] >= r[3] - 1e-6:
        return f"{length(t[1] - r[3], inches)} behind the {name}", i
    if t[3] <= r[1] + 1e-6:
        return f"{length(r[1] - t[3], inches)} in front of the {name}", i
    return f"beside the {name}", i


def _edge(ctx: Ctx, target: tuple[float, ...]) -> str | None:
    R, e = ctx.region, ctx.surface.edges
    if ctx.surface.kind == "inferred":
        return None
    inches = ctx.extra.get("inches", False)
    d = {
        "front": target[1] - R[1],
        "left": target[0] - R[0],
        "right": R[2] - target[2],
        "back": R[3] - target[3],
    }
    for name in ("front", "left", "right", "back"):
        if e[name].seen and (name == "front" or d[name] < 30):
            return f"about {length(d[name], inches)} from the {name} edge"
    return None


def instruction(ctx: Ctx, target: tuple[float, ...], dx: float, dy: float, rules: list[Rule]) -> str:
    """One sentence: how far which way, and where that is (a landmark, an edge)."""
    ctx.extra["inches"] = uses_inches(rules)
    what = noun(ctx.labels[ctx.mug_id])
    parts = []
    if abs(dx) >= 0.5:
        parts.append(f"{length(dx, ctx.extra['inches'])} to the {'right' if dx > 0 else 'left'}")
    if abs(dy) >= 0.5:
        parts.append(f"{length(dy, ctx.extra['inches'])} {'back' if dy > 0 else 'toward you'}")
    where = [p for p in (_landmark(ctx, target, rules), None) if p is not None]
    place = [where[0][0]] if where else []
    edge = _edge(ctx, target)
    if edge:
        place.append(edge)
    if not parts:
        return f"Nudge the {what} to stand " + ", ".join(place or ["on the table"])
    if not place:  # nothing else in view to name: say the move and that it stays on the table
        return f"Move the {what} " + " and ".join(parts) + ", staying on the table"
    return f"Move the {what} " + " and ".join(parts) + ", to " + ", ".join(place)
