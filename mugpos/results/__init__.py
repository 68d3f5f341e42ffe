"""The shapes every door returns: CLI `--json`, MCP structured output and the RunPod worker.

Each result has a full form (the CLI's `--json`, the stored analysis, `mugpos://analyses/{id}`) and a
compact view of the same type (`mugpos.results.views`), which the MCP tools return by default so a
busy photo costs an assistant a few thousand tokens: `detail` says which one a document is, and
`omitted` counts what the compact view left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mugpos.engine.analysis import Analysis, ImageRef
from mugpos.engine.timings import Timings
from mugpos.rules.verdicts import Conflict, Explanation, RuleVerdict, Suggestion
from mugpos.scene.model import Box, Scale, Scene

Detail = Literal["compact", "full"]
DETAIL_FIELD = Field(
    "full", description="'full': everything measured; 'compact': the key numbers (see `omitted`)"
)
OMITTED_FIELD = Field(
    default_factory=dict,
    description="compact view only: how many items of each kind were left out; detail='full' has them",
)


class AnalyzeResult(Analysis):
    """An `Analysis` with what the rules said of it: the same type the engine made, plus verdicts, a
    summary and the URIs it is kept under. The embedding stays out of results (the layout store
    keeps it for search)."""

    detail: Detail = DETAIL_FIELD
    analysis_id: str  # type: ignore[assignment]  # kept analyses always have both
    created_at: datetime  # type: ignore[assignment]
    summary: str = Field(description="one line a person can read")
    scene: Scene | None = Field(  # type: ignore[assignment]  # None only in the compact view
        None,
        description="the Scene JSON (reusable as `suggest --scene`), px_per_cm set to the scale used; "
        "full detail only",
    )
    object_counts: dict[str, int] = Field(
        default_factory=dict, description="how many objects of each label were detected"
    )
    rules: list[RuleVerdict] = Field(default_factory=list)
    resources: dict[str, str] = Field(
        default_factory=dict, description="mugpos:// URIs of the stored analysis"
    )
    omitted: dict[str, int] = OMITTED_FIELD
    embedding: list[float] | None = Field(None, exclude=True)

    @classmethod
    def of(cls, analysis: Analysis, **extra: Any) -> AnalyzeResult:
        """The analysis itself (its fields shared, not copied or validated again) with `extra`."""
        data = {name: getattr(analysis, name) for name in Analysis.model_fields} | extra
        made = cls.model_construct(_fields_set=set(data), **data)
        made._desk = analysis._desk  # the desk measured with it, not fitted again
        return made


class CheckResult(BaseModel):
    rules: list[RuleVerdict]
    scale: Scale
    analysis_id: str | None = None


class SuggestResult(BaseModel):
    detail: Detail = DETAIL_FIELD
    suggestions: list[Suggestion]
    conflicts: list[Conflict]
    rules: list[RuleVerdict] = Field(description="verdicts before any move")
    scale: Scale
    analysis_id: str | None = None
    summary: str = ""
    resources: dict[str, str] = Field(default_factory=dict)
    omitted: dict[str, int] = OMITTED_FIELD


class LayoutHit(BaseModel):
    analysis_id: str
    score: float = Field(description="hybrid similarity, higher is closer (0..1)")
    image_score: float | None = None
    layout_score: float | None = None
    created_at: datetime
    summary: str
    labels: list[str]
    has_violations: bool
    uri: str


class SearchResult(BaseModel):
    query: dict[str, Any]
    results: list[LayoutHit]
    total_layouts: int
    backend: str
    took_ms: float


class RuleInfo(BaseModel):
    id: str
    text: str
    interpretation: str
    severity: str
    enabled: bool
    checkable: bool
    reason: str | None = None
    rule: dict[str, Any] | None = Field(None, description="the structured rule model; full detail only")


class RuleList(BaseModel):
    detail: Detail = DETAIL_FIELD
    rules: list[RuleInfo]


class Removed(BaseModel):
    id: str
    removed: bool


class EngineStatus(BaseModel):
    version: str
    device: str | None
    models: dict[str, Any]
    cache: dict[str, Any]
    stores: dict[str, Any]
    batching: dict[str, Any]
    cpu: dict[str, Any] = Field(
        default_factory=dict,
        description="the CPU stages' worker processes (plane fit, rules, moves): processes, running, "
        "warm, calls, in_thread, restarts",
    )
    degraded: list[str] = Field(default_factory=list)
    off: list[str] = Field(default_factory=list, description="what settings switched off on purpose")


__all__ = [
    "Analysis",
    "AnalyzeResult",
    "Box",
    "CheckResult",
    "EngineStatus",
    "Explanation",
    "ImageRef",
    "LayoutHit",
    "RuleInfo",
    "RuleList",
    "SearchResult",
    "SuggestResult",
    "Timings",
]
