"""side: a half, a corner or the centre of the table (or of the image), the whole footprint in it.

Phrasings: "on the right side of the workspace", "toward the back of the table", "in the back-left
corner", "in the centre of the desk", "on the left half of the image", "never on the left side",
"I'm right-handed: mugs on my non-dominant side", "to the left of me".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    Meas,
    box_region_offset,
    from_truth,
)
from mugpos.rules.model import Rule
from mugpos.rules.placement import A, B, Ctx, guide
from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, selector

if TYPE_CHECKING:  # the plane fit (scipy) is not needed to read a rule, only to judge one
    from mugpos.scene.measure import Desk

KINDS = ("side",)

GRAMMAR = r"""
side: neg? subj? neg? (ON | FROM)? SIDE (FROM frame)?
    | neg? subj? neg? DIR (frame | PERSON)
    | neg? subj? neg? ON? frame FROM? SIDE
    | neg? subj? neg? ON? DOMSIDE
frame: SURF | IMG
"""

_DIR_REGION = {"left_of": "left", "right_of": "right", "in_front_of": "front", "behind": "back"}


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    frame = "image" if p.has("IMG") else "surface"
    dom = p.one("DOMSIDE")
    if dom is not None:
        hand = p.hand
        if hand is None:
            return dict(
                subject=subj, target=None, relation="side", checkable=False,
                reason="the dominant hand is not known; say 'position mugs on the left side' for a "
                "right-handed user (or 'on the right side' for a left-handed one)",
            )  # fmt: skip
        other = {"right": "left", "left": "right"}
        side = other[hand.value] if dom.value == "non-dominant" else hand.value
        p.notes.append(f"{hand.value}-handed user: the {dom.value} side is the {side}")
        region = side
    elif p.has("DIR"):
        d = p.one("DIR")
        assert d is not None
        region = _DIR_REGION[d.value]
        if p.has("PERSON"):
            p.notes.append("the person is taken to sit at the front edge, facing the camera's way")
    else:
        s = p.one("SIDE")
        if s is None:
            raise Unreadable("The rule names no side.")
        region = s.value
    target = {"kind": frame, "word": "image" if frame == "image" else "surface"}
    return dict(subject=subj, target=target, relation="side", region=region, frame=frame, negated=p.negated)


READERS = {"side": read}


# --- on the table plane --------------------------------------------------------------------------


def _inside(region: str, R: tuple[float, float, float, float], X: A, Y: A, w: float, d: float) -> B:
    mx, my = (R[0] + R[2]) / 2, (R[1] + R[3]) / 2
    W, D = R[2] - R[0], R[3] - R[1]
    ok = np.ones(X.shape, bool)
    if region == "center":
        return (
            (R[0] + W / 3 <= X)
            & (X + w <= R[0] + 2 * W / 3)
            & (R[1] + D / 3 <= Y)
            & (Y + d <= R[1] + 2 * D / 3)
        )
    for part in region.split("-"):
        ok &= {"left": X + w <= mx, "right": mx <= X, "front": Y + d <= my, "back": my <= Y}[part]
    return ok


def _image_inside(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    """Whether the mug's whole box in the photo lies in the rule's part of the image, for each
    candidate footprint corner (X, Y)."""
    return _box_inside(rule, ctx.desk, ctx.mug_id, ctx.start, X, Y)


def _box_inside(rule: Rule, desk: Desk, mug_id: str, start: tuple[float, float], X: A, Y: A) -> B:
    """`_image_inside` from its parts: the box `Desk.boxes_at` gives at each corner (X, Y), the
    `to_box` a suggestion reports (an unmoved mug's is its real box, as the evaluator judges it)."""
    W, H = desk.scene.image.width, desk.scene.image.height
    dx, dy = np.asarray(X, float) - start[0], np.asarray(Y, float) - start[1]
    box = desk.boxes_at(mug_id, dx.ravel(), dy.ravel()).T.reshape(4, *np.shape(X))
    ok = np.isfinite(box).all(axis=0)
    region = rule.region or "center"
    if region == "center":
        return ok & (box[0] >= W / 3) & (box[2] <= 2 * W / 3) & (box[1] >= H / 3) & (box[3] <= 2 * H / 3)
    for part in region.split("-"):
        ok = ok & {"left": box[2] <= W / 2, "right": box[0] >= W / 2, "front": box[1] >= H / 2,
                   "back": box[3] <= H / 2}[part]  # fmt: skip
    return ok


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    if not rule.subject.selects(ctx.labels[ctx.mug_id]):
        return np.zeros(X.shape, bool)
    if rule.frame == "image":
        inside = _image_inside(rule, ctx, X, Y)
    else:
        inside = _inside(rule.region or "center", ctx.region, X, Y, ctx.w, ctx.d)
    return inside if rule.negated else ~inside


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    R, e = ctx.region, 1e-3
    xs = [R[0] + (R[2] - R[0]) * k for k in (1 / 3, 1 / 2, 2 / 3)]
    ys = [R[1] + (R[3] - R[1]) * k for k in (1 / 3, 1 / 2, 2 / 3)]
    return [v + s for x in xs for v, s in ((x, e), (x - ctx.w, -e))], [
        v + s for y in ys for v, s in ((y, e), (y - ctx.d, -e))
    ]


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    if rule.frame == "image":
        W, H = ctx.desk.scene.image.width, ctx.desk.scene.image.height
        mid = (
            [[W / 2, 0.0], [W / 2, float(H)]]
            if (rule.region or "") in ("left", "right")
            else [[0.0, H / 2], [float(W), H / 2]]
        )
        return [
            {
                "kind": "line",
                "points_px": mid,
                "label": "middle of the image",
                "rule": rule.text or rule.interpretation,
            }
        ]
    R = ctx.region
    mx, my = (R[0] + R[2]) / 2, (R[1] + R[3]) / 2
    region = rule.region or "center"
    if region == "center":
        W, D = R[2] - R[0], R[3] - R[1]
        x1, x2, y1, y2 = R[0] + W / 3, R[0] + 2 * W / 3, R[1] + D / 3, R[1] + 2 * D / 3
        g = guide(ctx, "zone", [(x1, y1), (x2, y1), (x2, y2), (x1, y2)], "centre of the table", rule)
        return [g] if g else []
    out = []
    parts = region.split("-")
    if "left" in parts or "right" in parts:
        g = guide(ctx, "line", [(mx, R[1]), (mx, R[3])], "half line", rule)
        out += [g] if g else []
    if "front" in parts or "back" in parts:
        g = guide(ctx, "line", [(R[0], my), (R[2], my)], "half line", rule)
        out += [g] if g else []
    return out


# --- measured on the plane (the evaluator) --------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    desk = lay.desk
    out = []
    for s in [s for s in subj if only is None or only == s.id]:
        if rule.frame == "image":
            dx, dy, inside = box_region_offset(s.box, lay.image_box, rule.region or "center")
            ok = inside != rule.negated
            st = "satisfied" if ok else "violated"
            off = None
            if not inside and desk.has_footprint(s.id):
                off = _image_slide_cm(rule, desk, s.id)
            off = lay.cm(math.hypot(dx, dy)) if off is None else off
            out.append(Meas(s.id, measured_cm=off, required_cm=0.0, ok=ok, status=st))
            continue
        if not desk.has_footprint(s.id):
            out.append(Meas(s.id, status="uncertain", note=desk.why_off(s.id)))
            continue
        t, off = desk.in_region(s.id, rule.region or "center")
        note = None
        if t == "uncertain":
            cut = [n for n, e in desk.surface_of(s.id).edges.items() if not e.seen]
            note = (
                f"the photo does not show the table's {', '.join(cut)} edge" if cut else "too close to call"
            )
        out.append(
            from_truth(
                t,
                rule.negated,
                s.id,
                measured_cm=off.value,
                range_cm=off.range_cm,
                required_cm=0.0,
                note=note,
            )
        )
    return out, None


def _image_slide_cm(rule: Rule, desk: Desk, object_id: str) -> float | None:
    """The shortest slide on the table that brings the mug's whole box into the rule's part of the
    image: the solver's own whole-box test (`_box_inside`) over a grid of slides, 2 cm then 0.05 cm
    around the best. So "6 cm outside" is what a move must cover where the mug stands (perspective,
    foreshortened depth, the mug's height), never the photo's one average scale."""
    r = [float(v) for v in desk.feet[object_id][0]]
    if not np.all(np.isfinite(r)):
        return None
    parts = (rule.region or "center").split("-")
    across = any(p in ("left", "right", "center") for p in parts)
    deep = any(p in ("front", "back", "center") for p in parts)

    def nearest(ax: A, ay: A) -> tuple[float, float] | None:
        tx, ty = (g.ravel() for g in np.meshgrid(ax if across else np.zeros(1), ay if deep else np.zeros(1)))
        inside = _box_inside(rule, desk, object_id, (r[0], r[1]), r[0] + tx, r[1] + ty)
        if not inside.any():
            return None
        k = int(np.argmin(np.where(inside, np.hypot(tx, ty), np.inf)))
        return float(tx[k]), float(ty[k])

    coarse = np.arange(-300.0, 301.0, 2.0)
    best = nearest(coarse, coarse)
    if best is None:
        return None
    fine = np.arange(-2.0, 2.0 + 0.025, 0.05)
    best = nearest(best[0] + fine, best[1] + fine)
    return None if best is None else round(math.hypot(*best), 2)


def message(rule: Rule, m: Any) -> str:
    if rule.negated:
        return f"{m.object_id} stands in the {rule.region} area it should avoid"
    return f"{m.object_id} is {m.measured_cm} cm outside the {rule.region} area"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    region = rule.region or ""
    where = "the centre" if region == "center" else f"the {region} " + ("corner" if "-" in region else "half")
    frame = "the image" if rule.frame == "image" else "its surface"
    return f"every {s} {'not ' if rule.negated else ''}in {where} of {frame}"
