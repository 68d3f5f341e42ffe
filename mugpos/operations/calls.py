"""The tool table for doors that take a tool name and a JSON object (the RunPod worker, tests).

`TOOLS` maps each tool name to its argument model and handler; `call_tool` validates and runs one.
The argument models are built from the same annotated types as the MCP tools' parameters
(`mugpos.operations.arguments`), so both doors accept the same keys with the same descriptions, and
both refuse a key they do not know, naming the ones they do.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from mugpos import telemetry
from mugpos.errors import MugposError
from mugpos.operations.app import Mugpos
from mugpos.operations.arguments import (
    AnalysisIdArg,
    DetailArg,
    ExplainTextArg,
    FiltersArg,
    ImageArg,
    KArg,
    OptionalImageArg,
    PxPerCmArg,
    RuleArg,
    RuleIdArg,
    RulesArg,
    RuleTextArg,
    SceneArg,
    SearchTextArg,
    SeverityArg,
    UseSavedRulesArg,
)
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
from mugpos.results.views import compact_analysis, compact_rules, compact_suggestion


def refuse_unknown_keys(model: type[BaseModel], data: Any, what: str) -> None:
    """Raise a ValueError naming the unknown keys and the known ones (pydantic reports it)."""
    if isinstance(data, dict):
        known = set(model.model_fields)
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ValueError(
                f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(model.model_fields)}"
            )


class Args(BaseModel):
    """Arguments of one tool: unknown keys are refused with the list of known ones."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        refuse_unknown_keys(cls, data, "argument")
        return data


class AnalyzeArgs(Args):
    image: ImageArg
    rules: RulesArg = None
    px_per_cm: PxPerCmArg = None
    use_saved_rules: UseSavedRulesArg = True
    detail: DetailArg = "compact"


class SuggestArgs(Args):
    image: OptionalImageArg = None
    analysis_id: AnalysisIdArg = None
    scene: SceneArg = None
    rules: RulesArg = None
    use_saved_rules: UseSavedRulesArg = True
    detail: DetailArg = "compact"


class SearchArgs(Args):
    image: OptionalImageArg = None
    analysis_id: AnalysisIdArg = None
    text: SearchTextArg = None
    k: KArg = 5
    filters: FiltersArg = None


class AddRuleArgs(Args):
    text: RuleTextArg = None
    rule: RuleArg = None
    severity: SeverityArg = None


class ListRulesArgs(Args):
    detail: DetailArg = "compact"


class RuleIdArgs(Args):
    rule_id: RuleIdArg


class TextArgs(Args):
    text: ExplainTextArg


def analysis_view(result: AnalyzeResult, detail: str) -> AnalyzeResult:
    return result if detail == "full" else compact_analysis(result)


def suggestion_view(result: SuggestResult, detail: str) -> SuggestResult:
    return result if detail == "full" else compact_suggestion(result)


def rules_view(result: RuleList, detail: str) -> RuleList:
    return result if detail == "full" else compact_rules(result)


async def _t_analyze(app: Mugpos, a: AnalyzeArgs, p: Progress | None) -> Outcome:
    out = await app.analyze(
        a.image, a.rules, px_per_cm=a.px_per_cm, use_saved_rules=a.use_saved_rules, progress=p
    )
    assert isinstance(out.result, AnalyzeResult)
    return Outcome(analysis_view(out.result, a.detail), out.picture)


async def _t_suggest(app: Mugpos, a: SuggestArgs, p: Progress | None) -> Outcome:
    out = await app.suggest(
        image=a.image,
        analysis_id=a.analysis_id,
        scene=a.scene,
        rules=a.rules,
        use_saved_rules=a.use_saved_rules,
        progress=p,
    )
    assert isinstance(out.result, SuggestResult)
    return Outcome(suggestion_view(out.result, a.detail), out.picture)


async def _t_search(app: Mugpos, a: SearchArgs, p: Progress | None) -> Outcome:
    return Outcome(
        await app.search(
            image=a.image, analysis_id=a.analysis_id, text=a.text, k=a.k, filters=a.filters, progress=p
        )
    )


async def _t_add(app: Mugpos, a: AddRuleArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.add_rule(a.text, a.rule, a.severity))


async def _t_list(app: Mugpos, a: ListRulesArgs, p: Progress | None) -> Outcome:
    return Outcome(rules_view(await app.list_rules(), a.detail))


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
    "list_rules": ToolSpec(ListRulesArgs, RuleList, _t_list),
    "remove_rule": ToolSpec(RuleIdArgs, Removed, _t_remove),
    "explain_rule": ToolSpec(TextArgs, Explanation, _t_explain),
}


async def call_tool(
    app: Mugpos, name: str, arguments: dict[str, Any], progress: Progress | None = None
) -> Outcome:
    """Validate arguments and run one tool: the single entry for the RunPod worker and the A2A agent.

    Each call is counted in `mugpos_tool_calls` / `mugpos_tool_seconds` like an MCP call, so the
    operator's view shows the work of every door, not only MCP's.
    """
    t0 = time.perf_counter()
    spec = TOOLS.get(name)
    try:
        if spec is None:
            raise MugposError(
                f"unknown tool {name!r}", code="unknown_tool", hint=f"tools: {', '.join(TOOLS)}"
            )
        try:
            args = spec.args.model_validate(arguments or {})
        except Exception as exc:
            raise MugposError(
                f"bad arguments for {name}: {_first_error(exc)}",
                code="bad_arguments",
                hint=f"arguments of {name}: {', '.join(spec.args.model_fields)}",
            ) from None
        outcome = await spec.handler(app, args, progress)
    except MugposError as exc:
        telemetry.record_call(name if spec else "unknown", "refused", time.perf_counter() - t0, exc.code)
        raise
    except Exception:
        telemetry.record_call(name if spec else "unknown", "error", time.perf_counter() - t0, "internal")
        raise
    telemetry.record_call(name, "ok", time.perf_counter() - t0)
    return outcome
