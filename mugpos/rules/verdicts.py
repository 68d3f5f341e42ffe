"""What checking rules produces: the verdict and suggestion JSON clients read (docs/rules.md, docs/clients.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mugpos.scene.model import Box

Status = Literal["satisfied", "violated", "uncertain", "not_applicable", "not_checkable"]
PairStatus = Literal["satisfied", "violated", "uncertain"]
Range = tuple[float | None, float | None]
Severity = Literal["critical", "warning", "info"]


class Violation(BaseModel):
    object_id: str
    other_id: str | None = None
    measured_cm: float | None = None
    range_cm: Range | None = Field(
        None, description="what the plane's uncertainty allows (cm); null on a side: unbounded"
    )
    required_cm: float | None = None
    message: str


class Measurement(BaseModel):
    """One measured pair (or object), whether it passed or not."""

    object_id: str
    other_id: str | None = None
    measured_cm: float | None = None
    range_cm: Range | None = Field(None, description="what the plane's uncertainty allows (cm)")
    required_cm: float | None = None
    ok: bool = Field(description="the best estimate passes")
    status: PairStatus = Field("satisfied", description="uncertain: the range straddles the threshold")
    note: str | None = None


class RuleVerdict(BaseModel):
    """One rule against one scene. `not_checkable`: understood, but about things no detector sees."""

    rule_id: str | None = None
    text: str
    interpretation: str
    severity: Severity = "warning"
    status: Status
    violations: list[Violation] = Field(default_factory=list)
    reason: str | None = Field(None, description="why not_applicable / not_checkable / uncertain")
    measurements: list[Measurement] = Field(
        default_factory=list, description="every measured pair, passing or not (cm, 0.01)"
    )


class Move(BaseModel):
    dx_px: float
    dy_px: float
    dx_cm: float
    dy_cm: float


class Guide(BaseModel):
    """Something to draw in the photo, in perspective: the target footprint, a rule's line or zone."""

    kind: Literal["target", "line", "zone"]
    points_px: list[list[float]] = Field(description="polygon (target, zone) or polyline (line), pixels")
    label: str = ""
    rule: str | None = Field(None, description="text of the rule it illustrates")


class Suggestion(BaseModel):
    object_id: str
    from_box: Box
    to_box: Box
    to_footprint_cm: tuple[float, float, float, float] | None = Field(
        None, description="where the mug would stand on the table plane: [x1, y1, x2, y2] cm"
    )
    move: Move
    instruction: str
    guides: list[Guide] = Field(default_factory=list, description="what the picture draws for this move")
    satisfies: list[str] = Field(
        default_factory=list, description="texts of the rules the new spot satisfies"
    )
    still_violated: list[str] = Field(default_factory=list, description="texts of rules no spot satisfies")
    unconfirmed: list[str] = Field(
        default_factory=list,
        description="texts of rules the move satisfies by the best estimate but a check of the moved "
        "desk cannot confirm (its range straddles the threshold, or it needs an edge the photo cuts)",
    )


class Conflict(BaseModel):
    object_id: str | None = None
    rules: list[str] = Field(description="texts of rules that no position satisfies together")
    message: str


class Suggestions(BaseModel):
    suggestions: list[Suggestion] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)


class Explanation(BaseModel):
    text: str
    understood: bool
    interpretation: str | None = None
    checkable: bool | None = None
    reason: str | None = None
    rule: dict[str, Any] | None = None
    via: str | None = Field(None, description="grammar or llm")
    suggestions: list[str] = Field(default_factory=list, description="nearest supported phrasings")
