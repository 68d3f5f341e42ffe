"""align: the mugs stand in one row (centres level) or one column.

Phrasings: "line up the mugs in a row", "align cups in a column within 1 cm", "keep mugs lined up".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    fmt,
    from_measured,
)
from mugpos.rules.model import Rule
from mugpos.rules.placement import A, B, Ctx, guide
from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, selector

KINDS = ("align",)

GRAMMAR = r"""
align: ALIGN subj ALIGN? dist?
     | subj ALIGN ALIGN? dist?
"""


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    axes = {t.value for t in p.cats("ALIGN")}
    if (
        axes == {"row", "column"}
        and len(p.cats("ALIGN")) > 1
        and any(t.value == "column" for t in p.cats("ALIGN"))
    ):
        axes = {"column"}
    q = p.length()
    if p.comparison() == "min":
        raise Unreadable("An alignment takes a tolerance ('within 1 cm'), not a minimum.")
    fields = dict(subject=subj, target=None, relation="align", axis=axes.pop() if len(axes) == 1 else "row")
    if q is not None:
        fields["threshold_cm"] = q.value
    return fields


READERS = {"align": read}


# --- on the table plane --------------------------------------------------------------------------


def _line(rule: Rule, ctx: Ctx) -> float | None:
    ids = ctx.members(rule.subject, but_me=False)  # the median mug stays; the others come to it
    if len(ids) < 2:
        return None
    k = (1, 3) if rule.axis == "row" else (0, 2)
    return float(np.median([(ctx.rects[i][k[0]] + ctx.rects[i][k[1]]) / 2 for i in ids]))


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    line = _line(rule, ctx)
    if line is None or not rule.subject.selects(ctx.labels[ctx.mug_id]):
        return np.zeros(X.shape, bool)
    c = Y + ctx.d / 2 if rule.axis == "row" else X + ctx.w / 2
    return np.abs(c - line) > (rule.threshold_cm or 0.0) + 1e-9


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    line = _line(rule, ctx)
    if line is None:
        return [], []
    return ([], [line - ctx.d / 2]) if rule.axis == "row" else ([line - ctx.w / 2], [])


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    line, R = _line(rule, ctx), ctx.region
    if line is None:
        return []
    pts = [(R[0], line), (R[2], line)] if rule.axis == "row" else [(line, R[1]), (line, R[3])]
    g = guide(ctx, "line", pts, "the row" if rule.axis == "row" else "the column", rule)
    return [g] if g else []


# --- measured on the plane (the evaluator) --------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    desk = lay.desk
    on = [s for s in subj if desk.has_footprint(s.id)]
    if len(on) < 2:
        return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
    devs = desk.deviation([s.id for s in on], "row" if rule.axis == "row" else "column")
    return [
        from_measured(devs[s.id], rule.threshold_cm or 0.0, "max", s.id) for s in on if only in (None, s.id)
    ], None


def message(rule: Rule, m: Any) -> str:
    return f"{m.object_id} is {fmt(m)} off the line; tolerance {m.required_cm:g} cm"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    axis = "row (centres level)" if rule.axis == "row" else "column (centres in line)"
    return f"all {sp} in one {axis}, within {thr} cm of the median line"
