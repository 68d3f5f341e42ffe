"""The tool table for doors that take a tool name and a JSON object (the RunPod worker, tests).

`TOOLS` maps each tool name to its argument model and handler; `call_tool` validates and runs one.
The MCP door publishes the same seven tools as typed functions (`mugpos.mcp_server.tools`) built from
the same argument descriptions (`mugpos.operations.arguments`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mugpos.errors import MugposError
from mugpos.operations.app import Mugpos
from mugpos.operations.core import Outcome, Progress, _first_error
from mugpos.results import (
    AnalyzeResult,
    Explanation,
    Removed,
    RuleInfo,
    RuleList,
    SearchResult,
    SuggestResult,
)
from mugpos.scene.model import Scene


class AnalyzeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="local path, http(s) URL, data URI, raw base64, or mugpos:// resource URI")
    rules: list[str] | None = Field(
        None, description="extra rules in plain language, checked with the saved ones"
    )
    px_per_cm: float | None = Field(
        None, gt=0, description="known scale; estimated from known objects if omitted"
    )
    use_saved_rules: bool = True


class SuggestArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = None
    analysis_id: str | None = None
    scene: Scene | None = None
    rules: list[str] | None = None
    use_saved_rules: bool = True


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = None
    analysis_id: str | None = None
    text: str | None = None
    k: int = Field(5, ge=1, le=100)
    filters: dict[str, Any] | None = None


class AddRuleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    rule: dict[str, Any] | None = None
    severity: Literal["critical", "warning", "info"] | None = None


class RuleIdArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule_id: str


class TextArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _t_analyze(app: Mugpos, a: AnalyzeArgs, p: Progress | None) -> Outcome:
    return await app.analyze(
        a.image, a.rules, px_per_cm=a.px_per_cm, use_saved_rules=a.use_saved_rules, progress=p
    )


async def _t_suggest(app: Mugpos, a: SuggestArgs, p: Progress | None) -> Outcome:
    return await app.suggest(
        image=a.image,
        analysis_id=a.analysis_id,
        scene=a.scene,
        rules=a.rules,
        use_saved_rules=a.use_saved_rules,
        progress=p,
    )


async def _t_search(app: Mugpos, a: SearchArgs, p: Progress | None) -> Outcome:
    return Outcome(
        await app.search(
            image=a.image, analysis_id=a.analysis_id, text=a.text, k=a.k, filters=a.filters, progress=p
        )
    )


async def _t_add(app: Mugpos, a: AddRuleArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.add_rule(a.text, a.rule, a.severity))


async def _t_list(app: Mugpos, a: NoArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.list_rules())


async def _t_remove(app: Mugpos, a: RuleIdArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.remove_rule(a.rule_id))


async def _t_explain(app: Mugpos, a: TextArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.explain_rule(a.text))


@dataclass(frozen=True)
class ToolSpec:
    args: type[BaseModel]
    result: type[BaseModel]
    handler: Callable[[Mugpos, Any, Progress | None], Awaitable[Outcome]]


TOOLS: dict[str, ToolSpec] = {
    "analyze_image": ToolSpec(AnalyzeArgs, AnalyzeResult, _t_analyze),
    "suggest_position": ToolSpec(SuggestArgs, SuggestResult, _t_suggest),
    "search_similar_layouts": ToolSpec(SearchArgs, SearchResult, _t_search),
    "add_rule": ToolSpec(AddRuleArgs, RuleInfo, _t_add),
    "list_rules": ToolSpec(NoArgs, RuleList, _t_list),
    "remove_rule": ToolSpec(RuleIdArgs, Removed, _t_remove),
    "explain_rule": ToolSpec(TextArgs, Explanation, _t_explain),
}


async def call_tool(
    app: Mugpos, name: str, arguments: dict[str, Any], progress: Progress | None = None
) -> Outcome:
    """Validate arguments and run one tool: the single entry for the RunPod worker (and tests)."""
    spec = TOOLS.get(name)
    if spec is None:
        raise MugposError(f"unknown tool {name!r}", code="unknown_tool", hint=f"tools: {', '.join(TOOLS)}")
    try:
        args = spec.args.model_validate(arguments or {})
    except Exception as exc:
        raise MugposError(
            f"bad arguments for {name}: {_first_error(exc)}",
            code="bad_arguments",
            hint=f"schema: {spec.args.__name__}",
        ) from None
    return await spec.handler(app, args, progress)
