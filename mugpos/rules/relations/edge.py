"""edge_distance: how far a mug stands from the table's edges (all of them, or one).

Phrasings: "at least 10 cm from the table edge", "4 inches from the front edge of the desk",
"away from the edge", "no drink within 2 inches of the edge", "mugs must not hang over the edge",
"keep cups off the edge", "don't let mugs fall off the desk".
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
from mugpos.rules.model import EDGE_DEFAULT_CM, NEAR_DEFAULT_CM, TOUCH_CM, Rule
from mugpos.rules.placement import A, B, Ctx, guide
from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, flip, selector

KINDS = ("edge_distance",)

GRAMMAR = r"""
edge: neg? subj? neg? edgecore
?edgecore: dist? AWAY? FROM? EDGE
         | AWAY FROM? dist FROM EDGE
         | AWAY EDGE FROM? dist
         | dist? NEAR FROM? EDGE
         | TOUCH EDGE
         | OVER (EDGE | SURF)
         | OFF EDGE
"""


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    edges = p.one("EDGE").value if p.has("EDGE") else ["left", "right", "back", "front"]
    base = dict(subject=subj, target={"kind": "edge", "word": "edge"}, relation="edge_distance", edges=edges)
    if p.has("OVER"):
        if not p.negated:
            raise Unreadable("A rule that mugs should hang over the edge is not one I can place.")
        p.notes.append("'over/off the edge' means the whole footprint must lie on the table")
        return {**base, "bound": "min", "threshold_cm": 0.0}
    if p.has("OFF"):
        if p.negated:
            raise Unreadable("'not off the edge' does not say where the mug should be.")
        p.notes.append("'off the edge' means the whole footprint must lie on the table")
        return {**base, "bound": "min", "threshold_cm": 0.0}
    if p.has("TOUCH"):
        if not p.negated:
            raise Unreadable("A rule that mugs should touch the edge is not one I can place.")
        return {**base, "bound": "min", "threshold_cm": TOUCH_CM}
    q = p.length()
    cmp = p.comparison()
    if cmp is not None:
        pol = flip(cmp, p.negated)
    elif p.has("AWAY"):
        pol = flip("min", p.negated)
    elif p.has("NEAR"):
        pol = flip("max", p.negated)
    elif q is not None and not p.negated:
        pol = "min"
        p.notes.append("a bare distance ('keep X 10 cm from the edge') is read as a minimum")
    else:
        raise Unreadable("I could not tell whether mugs should be near the edge or away from it.")
    if q is not None:
        return {**base, "bound": pol, "threshold_cm": q.value}
    return {
        **base,
        "bound": pol,
        "threshold_cm": EDGE_DEFAULT_CM if pol == "min" else NEAR_DEFAULT_CM,
        "defaulted": True,
    }


READERS = {"edge": read}


# --- on the table plane --------------------------------------------------------------------------


def _distances(ctx: Ctx, X: A, Y: A) -> dict[str, A]:
    R = ctx.region
    return {"left": X - R[0], "right": R[2] - (X + ctx.w), "front": Y - R[1], "back": R[3] - (Y + ctx.d)}


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    if ctx.surface.kind == "inferred" or not rule.subject.selects(ctx.labels[ctx.mug_id]):
        return np.zeros(X.shape, bool)  # no edge to judge: nothing to move toward
    d = _distances(ctx, X, Y)
    thr = rule.threshold_cm or 0.0
    if rule.bound == "min":  # a cut edge counts where the photo stops: a conservative lower bound
        return np.min([d[e] for e in rule.edges], axis=0) < thr - 1e-9
    seen = [e for e in rule.edges if ctx.surface.edges[e].seen]
    if not seen:
        return np.ones(X.shape, bool)
    return np.min([d[e] for e in seen], axis=0) > thr + 1e-9


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    R, t = ctx.region, (rule.threshold_cm or 0.0)
    return [R[0] + t + 1e-3, R[2] - t - ctx.w - 1e-3], [R[1] + t + 1e-3, R[3] - t - ctx.d - 1e-3]


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    if ctx.surface.kind == "inferred":
        return []
    R, t = ctx.region, (rule.threshold_cm or 0.0)
    segs = {
        "left": [(R[0] + t, R[1]), (R[0] + t, R[3])],
        "right": [(R[2] - t, R[1]), (R[2] - t, R[3])],
        "front": [(R[0], R[1] + t), (R[2], R[1] + t)],
        "back": [(R[0], R[3] - t), (R[2], R[3] - t)],
    }
    out = []
    for e in rule.edges:
        if not ctx.surface.edges[e].seen:
            continue
        g = guide(ctx, "line", segs[e], f"{t:g} cm from the {e} edge", rule)
        if g is not None:
            out.append(g)
    return out


# --- measured on the plane (the evaluator) --------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    thr, desk = rule.threshold_cm or 0.0, lay.desk
    out = []
    for s in [s for s in subj if only is None or only == s.id]:
        if not desk.has_footprint(s.id):
            out.append(Meas(s.id, required_cm=thr, status="uncertain", note=desk.why_off(s.id)))
            continue
        e = desk.nearest_edge(s.id, tuple(rule.edges))
        shown = desk.surface_of(s.id).edges[e.edge].seen
        note = (
            None
            if e.seen
            else (e.why if shown else f"the photo does not show the table's {e.edge} edge: {e.why}")
        )
        out.append(from_measured(e.measured, thr, rule.bound or "min", s.id, desk.surface_of(s.id).id, note))
    return out, None


def message(rule: Rule, m: Any) -> str:
    op = "at least" if rule.bound == "min" else "within"
    return f"{m.object_id} is {fmt(m)} from the table edge; needs {op} {m.required_cm:g} cm"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    which = "every edge" if len(rule.edges) == 4 else " and ".join(f"the {e} edge" for e in rule.edges)
    if rule.bound == "max":
        return f"every {s} <= {thr} cm from the nearest of {which} of its surface"
    return f"every {s} >= {thr} cm from {which} of its surface"
