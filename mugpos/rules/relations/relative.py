"""relative: a mug to the left or right of, in front of or behind another object.

Phrasings: "put the mug to the right of the laptop", "keep mugs behind the keyboard", "never place
cups in front of the laptop", "the laptop should be left of the mug" (read from the mug's side).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    Meas,
    from_truth,
)
from mugpos.rules.model import Rule
from mugpos.rules.placement import A, B, Ctx, guide
from mugpos.rules.relations.base import MUG, Fields, Parts, is_mugish, selector

KINDS = ("relative",)

GRAMMAR = r"""
rel: neg? subj? neg? DIR tgt
"""

_OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "in_front_of": "behind", "behind": "in_front_of"}


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    tgt = selector(p.tgt)
    d = p.one("DIR")
    assert d is not None
    direction = d.value
    if not is_mugish(subj) and is_mugish(tgt):
        subj, tgt, direction = tgt, subj, _OPPOSITE[direction]
    return dict(subject=subj, target=tgt, relation="relative", direction=direction, negated=p.negated)


READERS = {"rel": read}


# --- on the table plane --------------------------------------------------------------------------


def _holds(direction: str, t: A, cx: A, cy: A) -> B:
    tw, td = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    if direction == "left_of":
        return cx[:, None] < (t[:, 0] + 0.25 * tw)[None, :]
    if direction == "right_of":
        return cx[:, None] > (t[:, 2] - 0.25 * tw)[None, :]
    if direction == "in_front_of":
        return cy[:, None] < (t[:, 1] + 0.25 * td)[None, :]
    return cy[:, None] > (t[:, 3] - 0.25 * td)[None, :]


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    ids = ctx.members(rule.target)
    if not ids or not rule.subject.selects(ctx.labels[ctx.mug_id]):
        return np.zeros(X.shape, bool)
    h = _holds(rule.direction or "", ctx.stack(ids), X + ctx.w / 2, Y + ctx.d / 2)
    return h.any(axis=1) if rule.negated else (~h).any(axis=1)


def _line(direction: str, r: A) -> float:
    tw, td = r[2] - r[0], r[3] - r[1]
    return {"left_of": r[0] + 0.25 * tw, "right_of": r[2] - 0.25 * tw, "in_front_of": r[1] + 0.25 * td}.get(
        direction, r[3] - 0.25 * td
    )


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for i in ctx.members(rule.target):
        v = _line(rule.direction or "", ctx.rects[i])
        if rule.direction in ("left_of", "right_of"):
            xs += [v - ctx.w / 2 - 1e-3, v - ctx.w / 2 + 1e-3]
        else:
            ys += [v - ctx.d / 2 - 1e-3, v - ctx.d / 2 + 1e-3]
    return xs, ys


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    R = ctx.region
    out = []
    for i in ctx.members(rule.target)[:3]:
        v = _line(rule.direction or "", ctx.rects[i])
        pts = [(v, R[1]), (v, R[3])] if rule.direction in ("left_of", "right_of") else [(R[0], v), (R[2], v)]
        d = (rule.direction or "").replace("_", " ")
        g = guide(ctx, "line", pts, f"{'not ' if rule.negated else ''}{d} the {ctx.labels[i]}", rule)
        out += [g] if g else []
    return out


# --- measured on the plane (the evaluator) --------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    desk = lay.desk
    targets = lay.members(rule.target)
    if not [t for t in targets if any(t is not s for s in subj)]:
        return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
    out = []
    for s in subj:
        for t in targets:
            if t is s or (only is not None and only not in (s.id, t.id)):
                continue
            if not (desk.has_footprint(s.id) and desk.has_footprint(t.id)):
                off = s.id if not desk.has_footprint(s.id) else t.id
                out.append(Meas(s.id, t.id, status="uncertain", note=f"{off} is {desk.why_off(off)}"))
                continue
            out.append(from_truth(desk.direction(s.id, t.id, rule.direction or ""), rule.negated, s.id, t.id))
    return out, None


def message(rule: Rule, m: Any) -> str:
    d = (rule.direction or "").replace("_", " ")
    return f"{m.object_id} is {'' if rule.negated else 'not '}{d} {m.other_id or 'its target'}"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    d = (rule.direction or "").replace("_", " ")
    d = {"left of": "to the left of", "right of": "to the right of"}.get(d, d)
    return f"every {s} {'not ' if rule.negated else ''}{d} every {t}"
