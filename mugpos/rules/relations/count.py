"""count: how many mugs may stand in the scene. Moving mugs cannot fix it; the solver says so.

Phrasings: "no more than 2 mugs on the desk", "at most three cups at a time", "only one mug on the
desk", "fewer than 4 drinks on the table", "max 2 mugs", "one mug at a time".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    Meas,
)
from mugpos.rules.model import Rule
from mugpos.rules.placement import A, B, Ctx
from mugpos.rules.relations.base import Fields, Parts, Unreadable, selector

KINDS = ("count",)

GRAMMAR = r"""
count: neg? countcue? NUM subj countplace* countcue?
countcue: MIN | MAX | ONLY
countplace: ON SURF | ATATIME | FROM SURF
"""


def read(p: Parts) -> Fields:
    num = p.one("NUM")
    assert num is not None
    n = int(num.value)
    cues = p.cats("MIN", "MAX", "ONLY")
    if len(cues) > 1:
        raise Unreadable("The count has two limits.")
    cue = cues[0] if cues else None
    if cue is None and not p.has("ATATIME"):
        raise Unreadable(
            f"'{n} ...' does not say at most or at least.", "Say 'no more than 2 mugs on the desk'."
        )
    if cue is None or cue.cat in ("ONLY", "MAX"):
        strict = cue is not None and cue.value == "strict"
        bound, limit = "max", (n - 1 if strict else n)
    else:
        strict = cue.value == "strict"
        bound, limit = "min", (n + 1 if strict else n)
    if p.negated:
        bound, limit = ("min", limit + 1) if bound == "max" else ("max", limit - 1)
    if limit < 0:
        raise Unreadable("That count cannot be met.")
    return dict(subject=selector(p.subj), target=None, relation="count", count=limit, bound=bound)


READERS = {"count": read}


# --- moving a mug cannot change a count: the solver reports it as a conflict instead


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    return np.zeros(X.shape, bool)


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    return [], []


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    return []


# --- measured (the evaluator) ----------------------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    n, limit = len(subj), rule.count or 0
    ok = n <= limit if rule.bound == "max" else n >= limit
    out = []
    for i, s in enumerate(subj):
        extra = rule.bound == "max" and i >= limit
        good = ok or not extra if rule.bound == "max" else ok
        out.append(Meas(s.id, ok=good, status="satisfied" if good else "violated"))
    return out, None


def message(rule: Rule, m: Any) -> str:
    return f"{m.object_id} is beyond the limit: {rule.interpretation}"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    op = "at most" if rule.bound == "max" else "at least"
    return f"{op} {rule.count} {s if rule.count == 1 else sp} in the scene"
