"""min_gap / max_gap: how far a mug stands from other objects, or from the other mugs.

Phrasings: "at least 6 in away from laptops", "no mug within 15 cm of a laptop", "laptops need a
buffer from cups", "keep cups off the laptop", "at least 20 cm between drinks and keyboards",
"a laptop and a mug should be 0.5 ft apart", "keep mugs 5 cm apart", "cluster mugs within 12 in of
each other", "group the drinks together", "don't let mugs touch the laptop".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    Meas,
    fmt,
    from_measured,
)
from mugpos.rules.model import (
    AWAY_DEFAULT_CM,
    GROUP_DEFAULT_CM,
    NEAR_DEFAULT_CM,
    SPACING_DEFAULT_CM,
    TOUCH_CM,
    Rule,
    Selector,
)
from mugpos.rules.placement import A, B, Ctx, corner_points, gaps, gaps2, guide, zone_lines, zone_polygon
from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, flip, is_mugish, selector

KINDS = ("min_gap", "max_gap")

GRAMMAR = r"""
gap: neg? subj? neg? gapcore
   | neg? gapcore_pre subj neg? gapcore
gapcore_pre: dist
?gapcore: dist? AWAY FROM? tgt
        | dist FROM AWAY FROM? tgt
        | AWAY FROM? dist FROM tgt
        | AWAY tgt FROM? dist
        | dist FROM tgt
        | dist? NEAR FROM? tgt
        | TOUCH FROM? tgt
        | OFF tgt
        | ON tgt
pair: neg? pairdist BETWEEN subj (AND | OR) tgt
    | BETWEEN subj (AND | OR) tgt neg? pairdist
    | neg? subj (AND | OR) tgt neg? pairword
pairdist: AWAY? dist (FROM? AWAY)? | AWAY
?pairword: dist? (APART | AWAY) dist? | TOUCH | dist | neg? NEAR
spacing: neg? onesubj neg? dist? (AWAY | NEAR)? FROM? EACH
       | neg? onesubj neg? dist? APART dist?
       | neg? onesubj neg? APART dist APART
       | neg? onesubj neg? TOUCH EACH
       | APART onesubj dist? APART?
       | AWAY onesubj dist? APART
       | neg? pairdist BETWEEN onesubj
group: GROUP subj GROUP? (dist (FROM EACH)?)? ZONE?
     | subj neg? GROUP+ (dist (FROM EACH)?)? ZONE?
     | GROUP subj dist FROM EACH ZONE?
"""


def _threshold(p: Parts, pol: str, each: bool) -> tuple[float, bool]:
    q = p.length()
    if q is not None:
        return q.value, False
    if each:
        return (SPACING_DEFAULT_CM if pol == "min" else GROUP_DEFAULT_CM), True
    return (AWAY_DEFAULT_CM if pol == "min" else NEAR_DEFAULT_CM), True


def _polarity(p: Parts) -> str:
    cmp = p.comparison()
    if cmp is not None:
        return flip(cmp, p.negated)
    if p.has("AWAY", "APART", "OFF"):
        return flip("min", p.negated)
    if p.has("NEAR", "GROUP"):
        return flip("max", p.negated)
    if p.has("ON"):  # only "not on the laptop" parses
        return "min"
    if p.length() is not None:
        if p.negated:
            raise Unreadable(
                "'not 10 cm from X' does not say nearer or further.", "Say 'at least' or 'within'."
            )
        p.notes.append("a bare distance ('keep X 10 cm from Y') is read as a minimum")
        return "min"
    raise Unreadable("I could not tell whether the mug should be near or away from it, or how far.")


def _sides(p: Parts) -> tuple[Selector, Selector]:
    subj = selector(p.subj) if p.subj else MUG
    tgt = selector(p.tgt)
    if not is_mugish(subj) and is_mugish(tgt):
        subj, tgt = tgt, subj  # "laptops need a buffer from cups": the mug is what moves
    return subj, tgt


def read(p: Parts) -> Fields:
    each = p.alt in ("spacing", "group")
    if p.has("TOUCH"):
        if not p.negated:
            raise Unreadable(
                "A rule that mugs should touch something is not one I can place.",
                "Say 'keep mugs within 5 cm of the laptop'.",
            )
        q = p.length()
        pol, thr, defaulted = "min", (q.value if q else TOUCH_CM), q is None
    elif p.has("OFF") or (p.has("ON") and p.alt == "gap"):
        if p.has("ON") and not p.negated:
            raise Unreadable("A mug on top of another object is not a place I can suggest.")
        pol, thr, defaulted = "min", TOUCH_CM, False
        p.notes.append(
            "'off' (or 'not on') an object is read as not touching it: footprints at least 1 cm apart"
        )
    else:
        pol = _polarity(p)
        thr, defaulted = _threshold(p, pol, each)
    if each:
        subj = selector(p.subj) if p.subj else MUG
        target = {"kind": "each_other", "word": "each other"}
        if p.has("ZONE"):
            p.notes.append("the designated area is not marked in the scene; only the grouping is checked")
        return dict(subject=subj, target=target, relation=f"{pol}_gap", threshold_cm=thr, defaulted=defaulted)
    if not p.tgt:
        raise Unreadable("The rule names no object to keep the distance from.")
    subj, tgt = _sides(p)
    return dict(subject=subj, target=tgt, relation=f"{pol}_gap", threshold_cm=thr, defaulted=defaulted)


READERS = {"gap": read, "pair": read, "spacing": read, "group": read}


# --- on the table plane: the solver's test, its boundaries and what to draw ------------------------


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    ids = ctx.targets(rule)
    me_subject = rule.subject.selects(ctx.labels[ctx.mug_id])
    if not ids or (rule.relation == "max_gap" and not me_subject):
        return np.zeros(X.shape, bool)
    g2 = gaps2(X, Y, ctx.w, ctx.d, ctx.stack(ids))
    thr = rule.threshold_cm or 0.0
    if rule.relation == "min_gap":
        return (g2 < max(thr - 1e-9, 0.0) ** 2).any(axis=1)
    if rule.target is not None and rule.target.kind == "each_other":
        return (g2 > (thr + 1e-9) ** 2).any(axis=1)
    return g2.min(axis=1) > (thr + 1e-9) ** 2


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    ids = ctx.targets(rule)
    return zone_lines(ctx.stack(ids), (rule.threshold_cm or 0.0) + 1e-3, ctx.w, ctx.d) if ids else ([], [])


def points(rule: Rule, ctx: Ctx) -> list[tuple[float, float]]:
    ids = ctx.targets(rule)
    if not ids or rule.relation != "min_gap":
        return []
    return corner_points(ctx.stack(ids), rule.threshold_cm or 0.0, ctx.w, ctx.d, ctx.start)


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    ids = ctx.targets(rule)
    thr = rule.threshold_cm or 0.0
    if not ids:
        return []
    if rule.relation == "max_gap" and not (rule.target is not None and rule.target.kind == "each_other"):
        sx, sy = ctx.start
        start = np.array([sx]), np.array([sy])
        g = gaps(*start, ctx.w, ctx.d, ctx.stack(ids))[0]
        ids = [ids[int(np.argmin(g))]]
    tx, ty = ctx.rects[ctx.mug_id][0], ctx.rects[ctx.mug_id][1]
    near = gaps(np.array([tx]), np.array([ty]), ctx.w, ctx.d, ctx.stack(ids))[0]
    ids = [i for _, i in sorted(zip(near, ids, strict=True)) if _ <= thr + 30][:3] or ids[:1]
    out = []
    for i in ids:
        name = _noun(ctx.labels[i])
        label = (
            f"keep {thr:g} cm clear of the {name}"
            if rule.relation == "min_gap"
            else f"within {thr:g} cm of the {name}"
        )
        g = guide(ctx, "zone", zone_polygon(ctx.rects[i], thr), label, rule)
        if g is not None:
            out.append(g)
    return out


def _noun(label: str) -> str:
    return {"cup": "mug", "cell phone": "phone", "tv": "screen"}.get(label, label)


# --- measured on the plane (the evaluator) --------------------------------------------------------


def _gap(desk: Any, a: str, b: str, thr: float, bound: str) -> Meas:
    if not (desk.has_footprint(a) and desk.has_footprint(b)):
        off = a if not desk.has_footprint(a) else b
        return Meas(a, b, required_cm=thr, ok=True, status="uncertain", note=f"{off} is {desk.why_off(off)}")
    return from_measured(desk.gap(a, b), thr, bound, a, b)


def _nearness(desk: Any, a: str, b: str) -> tuple[float, str]:
    if not (desk.has_footprint(a) and desk.has_footprint(b)):
        return (float("inf"), b)
    return (desk.gap(a, b).value_cm or 0.0, b)


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    r, thr, desk = rule.relation, rule.threshold_cm or 0.0, lay.desk
    bound = "min" if r == "min_gap" else "max"
    out: list[Meas] = []
    if rule.target is not None and rule.target.kind == "each_other":
        if len(subj) < 2:
            return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
        for i, a in enumerate(subj):
            for b in subj[i + 1 :]:
                if only is None or only in (a.id, b.id):
                    out.append(_gap(desk, a.id, b.id, thr, bound))
        return out, None
    targets = lay.members(rule.target)
    if not [t for t in targets if any(t is not s for s in subj)]:
        return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
    for s in subj:
        cands = [t for t in targets if t is not s]
        if not cands or (only is not None and only != s.id and not any(t.id == only for t in cands)):
            continue
        if r == "min_gap":
            out.extend(_gap(desk, s.id, t.id, thr, bound) for t in cands if only in (None, s.id, t.id))
            continue
        # within: the nearest target decides (by best estimate; unmeasurable ones last)
        t = min(cands, key=lambda t, a=s.id: _nearness(desk, a, t.id))
        if only is None or only in (s.id, t.id):
            out.append(_gap(desk, s.id, t.id, thr, bound))
    return out, None


def message(rule: Rule, m: Any) -> str:
    other = m.other_id or "its surface"
    if rule.relation == "min_gap":
        return f"{m.object_id} is {fmt(m)} from {other}; needs at least {m.required_cm:g} cm"
    return f"{m.object_id} is {fmt(m)} from {other}; must be within {m.required_cm:g} cm"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    """The one-line restatement ('every mug >= 15.24 cm from every laptop')."""
    each = rule.target is not None and rule.target.kind == "each_other"
    if rule.relation == "min_gap":
        return f"every two {sp} >= {thr} cm apart" if each else f"every {s} >= {thr} cm from every {t}"
    return f"every two {sp} <= {thr} cm apart" if each else f"every {s} <= {thr} cm from the nearest {t}"
