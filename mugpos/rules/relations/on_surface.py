"""on_surface: the whole mug stands on a table.

Phrasings: "keep mugs on the table", "mugs must stay on the desk", "never off the desk".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mugpos.rules.measuring import (
    Found,
    Item,
    Layout,
    from_truth,
)
from mugpos.rules.model import Rule
from mugpos.rules.placement import A, B, Ctx
from mugpos.rules.relations.base import MUG, Fields, Parts, selector

KINDS = ("on_surface",)

GRAMMAR = r"""
onsurf: neg? subj? neg? (ON | OFF) SURF
"""


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    off = p.has("OFF")
    return dict(
        subject=subj,
        target={"kind": "surface", "word": "table"},
        relation="on_surface",
        negated=p.negated != off,
    )


READERS = {"onsurf": read}


# --- on the table plane: the solver keeps every target on the table, so this holds by construction


def violated(rule: Rule, ctx: Ctx, X: A, Y: A) -> B:
    return np.full(X.shape, bool(rule.negated))


def lines(rule: Rule, ctx: Ctx) -> tuple[list[float], list[float]]:
    return [], []


def guides(rule: Rule, ctx: Ctx) -> list[dict[str, Any]]:
    return []


# --- measured on the plane (the evaluator) --------------------------------------------------------


def measure(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> Found:
    if not lay.tables:
        return [], "no table detected in the scene"
    desk = lay.desk
    out = []
    for s in [s for s in subj if only is None or only == s.id]:
        if not desk.has_footprint(s.id):
            out.append(from_truth("no", rule.negated, s.id))
            continue
        out.append(from_truth(desk.stands_on_table(s.id), rule.negated, s.id, desk.surface_of(s.id).id))
    return out, None


def message(rule: Rule, m: Any) -> str:
    return f"{m.object_id} is {'on' if rule.negated else 'not on'} a table"


def describe(rule: Rule, s: str, sp: str, t: str, thr: str) -> str:
    return f"every {s} {'not ' if rule.negated else ''}standing on a table"
