"""The shapes every door returns: CLI `--json`, MCP structured output and the RunPod worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mugpos.engine.timings import Timings
from mugpos.rules.verdicts import Conflict, Explanation, RuleVerdict, Suggestion
from mugpos.scene.geometry import MugPosition, Relation, Surface
from mugpos.scene.model import Box, Scale, Scene


class ImageRef(BaseModel):
    width: int
    height: int
    sha256: str | None = None
    source: str | None = Field(None, description="path, url, data-uri, base64, resource or scene")


class AnalyzeResult(BaseModel):
    analysis_id: str
    created_at: datetime
    image: ImageRef
    summary: str = Field(description="one line a person can read")
    scene: Scene = Field(
        description="the Scene JSON (reusable as `suggest --scene`), px_per_cm set to the scale used"
    )
    scale: Scale
    surface: Surface
    mugs: list[MugPosition]
    relations: list[Relation]
    rules: list[RuleVerdict] = Field(default_factory=list)
    embedder: str = Field(description="CLIP model identity, or 'disabled: <reason>'")
    timings: Timings
    warnings: list[str] = Field(default_factory=list)
    resources: dict[str, str] = Field(
        default_factory=dict, description="mugpos:// URIs of the stored analysis"
    )


class CheckResult(BaseModel):
    rules: list[RuleVerdict]
    scale: Scale
    analysis_id: str | None = None


class SuggestResult(BaseModel):
    suggestions: list[Suggestion]
    conflicts: list[Conflict]
    rules: list[RuleVerdict] = Field(description="verdicts before any move")
    scale: Scale
    analysis_id: str | None = None
    summary: str = ""
    resources: dict[str, str] = Field(default_factory=dict)


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
    rule: dict[str, Any] = Field(description="the structured rule model")


class RuleList(BaseModel):
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
    degraded: list[str] = Field(default_factory=list)


__all__ = [
    "AnalyzeResult",
    "Box",
    "CheckResult",
    "EngineStatus",
    "Explanation",
    "LayoutHit",
    "RuleInfo",
    "RuleList",
    "SearchResult",
    "SuggestResult",
    "Timings",
]
