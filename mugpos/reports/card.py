"""What a report card says, independent of who draws it (Templated.io or the local renderer).

A pure function turns an analysis (and, if there is one, a suggestion) into `ReportCard`: a title,
an overall status with its colour, one line per rule verdict, the move to make, a summary and a
footer. Both renderers draw exactly these fields into the same layers, so the card reads the same
whichever drew it. The layer names are the contract with the Templated.io template (docs/agents.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["ok", "violated", "uncertain", "no rules"]
STATUS_COLOURS: dict[str, str] = {
    "ok": "#2E7D32",
    "violated": "#C62828",
    "uncertain": "#EF8F00",
    "no rules": "#546E7A",
}
MARKS = {"satisfied": "✓", "violated": "✗", "uncertain": "?", "not_applicable": "–", "not_checkable": "·"}

# The Templated.io template's layer names (and what the local renderer draws in each place).
LAYER_PHOTO, LAYER_TITLE, LAYER_STATUS, LAYER_STATUS_TEXT = "photo", "title", "status", "status-text"
LAYER_VERDICTS, LAYER_MOVE, LAYER_SUMMARY, LAYER_FOOTER = "verdicts", "move", "summary", "footer"


class ReportCard(BaseModel):
    title: str
    status: Status
    status_text: str
    verdicts: list[str] = Field(description="one line per rule: mark, rule text, what was measured")
    move: str | None = Field(None, description="the instruction of the first suggested move")
    summary: str
    footer: str

    @property
    def colour(self) -> str:
        return STATUS_COLOURS[self.status]


def report_card(analysis: dict[str, Any], suggestion: dict[str, Any] | None = None) -> ReportCard:
    """The card for an analysis result (JSON as `AnalyzeResult.model_dump(mode="json")` gives it)."""
    rules = analysis.get("rules") or []
    count = {k: sum(1 for r in rules if r["status"] == k) for k in ("satisfied", "violated", "uncertain")}
    status: Status = (
        "violated" if count["violated"]
        else "uncertain" if count["uncertain"]
        else "ok" if count["satisfied"]
        else "no rules"
    )  # fmt: skip
    rest = len(rules) - count["satisfied"] - count["violated"] - count["uncertain"]
    also = f"; {rest} did not apply" if rest else ""
    status_text = {
        "ok": f"{count['satisfied']} rule{'s' if count['satisfied'] != 1 else ''} met{also}",
        "violated": f"{count['violated']} of {len(rules)} rule{'s' if len(rules) != 1 else ''} broken",
        "uncertain": f"{count['uncertain']} too close to call",
        "no rules": "No rule applies here" if rules else "No rules checked",
    }[status]
    move = None
    if suggestion and suggestion.get("suggestions"):
        move = suggestion["suggestions"][0]["instruction"]
    elif suggestion and suggestion.get("conflicts"):
        move = "No single move satisfies every rule (conflicting rules)"
    n = len(analysis.get("mugs") or [])
    created = str(analysis.get("created_at", ""))[:16].replace("T", " ")
    return ReportCard(
        title=f"Desk report: {n} mug{'s' if n != 1 else ''}",
        status=status,
        status_text=status_text,
        verdicts=[_verdict_line(r) for r in rules[:6]],
        move=move,
        summary=str(analysis.get("summary", "")),
        footer=f"{analysis.get('analysis_id', '')} · {created} UTC · mugpos",
    )


def _verdict_line(r: dict[str, Any]) -> str:
    mark = MARKS.get(r["status"], "·")
    detail = ""
    v = (r.get("violations") or [None])[0]
    if v and v.get("measured_cm") is not None and (v.get("required_cm") or 0) >= 0.5:
        detail = f" ({_cm(v['measured_cm'])} cm, needs {_cm(v['required_cm'])})"
    return f"{mark} {r['text']}{detail}"


def _cm(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}"


def template_layers(card: ReportCard, photo_url: str | None) -> dict[str, dict[str, Any]]:
    """The `layers` object of a Templated.io render request for this card."""
    layers: dict[str, dict[str, Any]] = {
        LAYER_TITLE: {"text": card.title},
        LAYER_STATUS: {"fill": card.colour},
        LAYER_STATUS_TEXT: {"text": card.status_text, "color": "#FFFFFF"},
        LAYER_VERDICTS: {"text": "\n".join(card.verdicts) or "No rules were checked."},
        LAYER_MOVE: {"text": f"Move: {card.move}"} if card.move else {"hide": True},
        LAYER_SUMMARY: {"text": card.summary},
        LAYER_FOOTER: {"text": card.footer},
    }
    layers[LAYER_PHOTO] = {"image_url": photo_url} if photo_url else {"hide": True}
    return layers
