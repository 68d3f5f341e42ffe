"""Short text summaries of results: one line a person (or an assistant) reads before the JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

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
        if conflicts:
            return f"{len(conflicts)} conflicts; no move helps"
        unsure = [v for v in verdicts if v.status in ("uncertain", "violated")]
        if unsure:  # never "all satisfied" when the photo could not tell
            return (
                f"no move suggested; {len(unsure)} of {len(verdicts)} rules the photo cannot settle: "
                + "; ".join(f"{v.text or v.interpretation} ({v.status})" for v in unsure[:3])
            )
        return "every mug already satisfies the rules"
    moves = "; ".join(
        f"{s.object_id}: {s.instruction}"
        + (
            f" (the photo cannot confirm {len(s.unconfirmed)} rule{'s' if len(s.unconfirmed) != 1 else ''})"
            if s.unconfirmed
            else ""
        )
        for s in suggestions[:4]
    )
    return moves + (f"; {len(conflicts)} conflicts" if conflicts else "")


def text_summary(name: str, result: BaseModel) -> str:
    """A few short lines a person (or an assistant) reads before the JSON of a tool's result."""
    d = result.model_dump(mode="json")
    if name == "analyze_image":
        res = d.get("resources") or {}
        line = f"{d['summary']}\nanalysis_id: {d['analysis_id']}"
        if res:
            line += f" (stored: {res.get('analysis')}, picture: {res.get('annotated')})"
        if d.get("warnings"):
            line += "\nwarnings: " + "; ".join(d["warnings"])
        return line
    if name == "suggest_position":
        return d.get("summary") or f"{len(d['suggestions'])} suggestions, {len(d['conflicts'])} conflicts"
    if name == "search_similar_layouts":
        hits = d["results"]
        top = "; ".join(f"{h['analysis_id']} ({h['score']:.2f}): {h['summary']}" for h in hits[:3])
        return f"{len(hits)} similar layouts of {d['total_layouts']} stored" + (f": {top}" if top else "")
    if name == "add_rule":
        line = f"saved rule {d['id']}: {d['interpretation']}"
        return line if d["checkable"] else f"{line} (not checkable: {d.get('reason')})"
    if name == "list_rules":
        rules = d["rules"]
        if not rules:
            return "no saved rules"
        return f"{len(rules)} saved rules:\n" + "\n".join(
            f"- {r['id']}: {r['text']} -> {r['interpretation']}{'' if r['enabled'] else ' (disabled)'}"
            for r in rules
        )
    if name == "remove_rule":
        return f"removed rule {d['id']}"
    if name == "explain_rule":
        if d["understood"]:
            return f"understood ({d.get('via')}): {d.get('interpretation')}"
        near = "; ".join(d.get("suggestions") or [])
        return f"not understood: {d.get('reason') or d['text']}" + (
            f"; nearest phrasings: {near}" if near else ""
        )
    return name
