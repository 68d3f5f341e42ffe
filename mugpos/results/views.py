"""Compact views of results: the same types with less in them, for an assistant's context window.

A busy photo (30+ objects, ten rules) measured in full is 20-30 KB of JSON (10k+ tokens): every
object box, every pairwise relation, every per-object measurement of every rule. The compact view
keeps what an assistant acts on (each mug's position, its nearest neighbours, each rule's verdict and
its worst violations) within `budget` bytes of JSON, and counts in `omitted` what it left out; the
full form stays one call (`detail="full"`) or one resource read (`mugpos://analyses/{id}`) away.
Pure functions: no I/O.
"""

from __future__ import annotations

from collections import Counter
from typing import TypeVar

from pydantic import BaseModel

from mugpos.results import AnalyzeResult, RuleList, SuggestResult
from mugpos.rules.verdicts import RuleVerdict, Suggestion
from mugpos.scene.model import Scale

COMPACT_BYTES = 6000
"""The compact view's budget for the structured JSON of one result (about 2k tokens)."""

M = TypeVar("M", bound=BaseModel)


def size(model: BaseModel) -> int:
    """Bytes of the JSON an MCP client receives."""
    return len(model.model_dump_json().encode())


def compact_scale(scale: Scale) -> Scale:
    """The scale without the list of reference objects (the note still names the main ones)."""
    note = scale.note if len(scale.note) <= 120 else scale.note[:117].rsplit(",", 1)[0] + ", ..."
    return scale.model_copy(update={"references": [], "note": note})


def compact_verdicts(verdicts: list[RuleVerdict], max_violations: int) -> tuple[list[RuleVerdict], int, int]:
    """Verdicts without per-object measurements, with at most `max_violations` violations each and
    reasons cut to a line; returns (verdicts, measurements omitted, violations omitted)."""
    out, n_meas, n_viol = [], 0, 0
    for v in verdicts:
        n_meas += len(v.measurements)
        n_viol += max(0, len(v.violations) - max_violations)
        reason = v.reason if v.reason is None or len(v.reason) <= 120 else v.reason[:117].rstrip() + "..."
        out.append(
            v.model_copy(
                update={"measurements": [], "violations": v.violations[:max_violations], "reason": reason}
            )
        )
    return out, n_meas, n_viol


def compact_analysis(full: AnalyzeResult, budget: int = COMPACT_BYTES) -> AnalyzeResult:
    """`full` without the scene's boxes, with each mug's nearest neighbours only, shrunk to `budget`."""
    counts = full.object_counts
    if not counts and full.scene is not None:
        counts = dict(Counter(o.label for o in full.scene.objects))
    best: AnalyzeResult | None = None
    for per_mug, max_viol, max_mugs in ((3, 3, 12), (2, 2, 10), (1, 1, 8), (0, 1, 6), (0, 0, 4)):
        mugs = full.mugs[:max_mugs]
        kept_ids = {m.object_id for m in mugs}
        relations = []
        for mug_id in (m.object_id for m in mugs):
            near = sorted((r for r in full.relations if r.subject_id == mug_id), key=lambda r: r.gap_px)
            relations.extend(near[:per_mug])
        verdicts, n_meas, n_viol = compact_verdicts(full.rules, max_viol)
        omitted = {
            "objects": len(full.scene.objects) if full.scene else 0,
            "mugs": len(full.mugs) - len(kept_ids),
            "relations": len(full.relations) - len(relations),
            "measurements": n_meas,
            "violations": n_viol,
        }
        best = full.model_copy(
            update={
                "detail": "compact",
                "scene": None,
                "object_counts": counts,
                "scale": compact_scale(full.scale),
                "mugs": mugs,
                "relations": relations,
                "rules": verdicts,
                "omitted": {k: v for k, v in omitted.items() if v},
            }
        )
        if size(best) <= budget:
            break
    assert best is not None
    return best


def _round_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (round(v, 1) for v in box)
    return (x1, y1, x2, y2)


def compact_suggestion(full: SuggestResult, budget: int = COMPACT_BYTES) -> SuggestResult:
    """Suggestions first (they are what the caller asked for) without the picture's guide polygons,
    boxes rounded to 0.1 px, saved rules
    named by their id in `satisfies`/`still_violated`/`unconfirmed`/conflicts (each verdict in `rules` pairs the id
    with the words), repeated conflicts and verdict details trimmed until the JSON fits `budget`."""
    ids = {v.text: v.rule_id for v in full.rules if v.rule_id}

    def named(texts: list[str]) -> list[str]:  # a saved rule by its id: `rules` has its words
        return [ids.get(t, t) for t in texts]

    drawn = "guides" in Suggestion.model_fields  # lines and zones for the picture: full detail only
    n_guides = sum(len(getattr(s, "guides", [])) for s in full.suggestions)
    suggestions = [
        s.model_copy(
            update={
                "from_box": _round_box(s.from_box),
                "to_box": _round_box(s.to_box),
                "satisfies": named(s.satisfies),
                "still_violated": named(s.still_violated),
                "unconfirmed": named(s.unconfirmed),
                **({"guides": []} if drawn else {}),
            }
        )
        for s in full.suggestions
    ]
    conflicts = [c.model_copy(update={"rules": named(c.rules)}) for c in full.conflicts]
    best: SuggestResult | None = None
    for max_viol, max_sugg, max_conf in ((3, 12, 6), (2, 10, 3), (1, 8, 2), (0, 6, 1), (0, 4, 1), (0, 2, 0)):
        verdicts, n_meas, n_viol = compact_verdicts(full.rules, max_viol)
        omitted = {
            "measurements": n_meas,
            "violations": n_viol,
            "suggestions": max(0, len(suggestions) - max_sugg),
            "conflicts": max(0, len(full.conflicts) - max_conf),
            "guides": n_guides,
        }
        best = full.model_copy(
            update={
                "detail": "compact",
                "rules": verdicts,
                "suggestions": suggestions[:max_sugg],
                "conflicts": conflicts[:max_conf],
                "scale": compact_scale(full.scale),
                "omitted": {k: v for k, v in omitted.items() if v},
            }
        )
        if size(best) <= budget:
            break
    assert best is not None
    return best


def compact_rules(full: RuleList) -> RuleList:
    """Each rule's id, words, interpretation and state, without the structured rule model."""
    return full.model_copy(
        update={"detail": "compact", "rules": [r.model_copy(update={"rule": None}) for r in full.rules]}
    )
