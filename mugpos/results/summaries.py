"""Short text summaries of results: one line a person (or an assistant) reads before the JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mugpos.engine.analysis import Analysis


def analysis_summary(analysis: Analysis, verdicts: list[Any]) -> str:
    n = len(analysis.mugs)
    mugs = ", ".join(f"{m.object_id} at {m.zone}" for m in analysis.mugs[:4]) or "no mug found"
    others = sorted({o.label for o in analysis.scene.objects if not o.is_mug})
    surface = f"on {analysis.surface.id}" if analysis.surface.id else "no table detected"
    broken = [v for v in verdicts if v.status == "violated"]
    rules = f"; {len(broken)} of {len(verdicts)} rules violated" if verdicts else ""
    ctx = f"; also {', '.join(others[:6])}" if others else ""
    return f"{n} mug{'s' if n != 1 else ''} ({mugs}), {surface}{ctx}{rules}; scale {analysis.scale.px_per_cm:.2f} px/cm ({analysis.scale.source})"


def suggest_summary(suggestions: list[Any], conflicts: list[Any], verdicts: list[Any]) -> str:
    if not verdicts:
        return "no rules to check: add rules or pass rules"
    if not suggestions:
        return (
            "every mug already satisfies the rules"
            if not conflicts
            else f"{len(conflicts)} conflicts; no move helps"
        )
    moves = "; ".join(f"{s.object_id}: {s.instruction}" for s in suggestions[:4])
    return moves + (f"; {len(conflicts)} conflicts" if conflicts else "")
