"""The seven MCP tools: plain typed functions over `mugpos.operations`.

Each parameter is an annotated type from `mugpos.operations.arguments` (its description gives the
unit and an example), so the SDK derives the input schemas, and each tool's return annotation names
its result model, so the SDK publishes the outputSchema. Unknown argument keys are refused with the
list of known ones. Results are compact by default (`detail="full"` on request, and in the
`mugpos://analyses/{id}` resource); the text content is a short summary and the same JSON. What is
MCP-specific lives here: when to use each tool, annotations, progress, the picture as image
content, and errors an assistant can act on.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, model_validator

from mugpos import telemetry
from mugpos.errors import MugposError
from mugpos.mcp_server.desk_app import tool_meta
from mugpos.operations import Mugpos, Outcome, Picture, Progress
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
from mugpos.operations.calls import analysis_view, refuse_unknown_keys, rules_view, suggestion_view
from mugpos.results import (
    AnalyzeResult,
    Explanation,
    Removed,
    RuleInfo,
    RuleList,
    SearchResult,
    SuggestResult,
)
from mugpos.results.summaries import text_summary

if TYPE_CHECKING:
    from mcp.server import MCPServer

log = logging.getLogger("mugpos.mcp")

# A whole tool result (JSON twice: structured + text, plus the base64 picture) stays under this.
MAX_RESULT_BYTES = 768 * 1024
MIN_PICTURE_SIDE = 160

READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
Operation = Callable[[Progress | None], Awaitable[Outcome]]


def register_tools(server: MCPServer[Any], app: Mugpos) -> None:
    """The seven tools, each a typed function; then unknown argument keys are made an error."""

    async def run(name: str, ctx: Context | None, op: Operation) -> CallToolResult:
        return await run_tool(app, name, op, ctx)

    @server.tool(
        title="Analyze a photo of mugs",
        meta=tool_meta("analyze_image"),  # the desk view (MCP Apps)
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def analyze_image(
        image: ImageArg,
        ctx: Context,
        rules: RulesArg = None,
        px_per_cm: PxPerCmArg = None,
        use_saved_rules: UseSavedRulesArg = True,
        detail: DetailArg = "compact",
    ) -> Annotated[CallToolResult, AnalyzeResult]:
        """Use when the user shares or points to a photo of a desk, table or counter and asks where a
        mug/cup is, whether it is safe, or what is around it. Detects the objects, measures the scene
        in centimetres (scale estimated from objects of known size unless px_per_cm is given),
        locates each mug (pixels, normalised, zone, cm from the edges), lists its nearest objects and
        checks the saved rules plus any `rules` given here. Returns an annotated picture and an
        analysis_id; the analysis is stored, so pass the id to suggest_position or
        search_similar_layouts instead of sending the image again. Compact by default; detail='full'
        or the mugpos://analyses/{analysis_id} resource has every box, relation and measurement."""

        async def op(progress: Progress | None) -> Outcome:
            out = await app.analyze(
                image, rules, px_per_cm=px_per_cm, use_saved_rules=use_saved_rules, progress=progress
            )
            assert isinstance(out.result, AnalyzeResult)
            return Outcome(analysis_view(out.result, detail), out.picture)

        return await run("analyze_image", ctx, op)

    @server.tool(
        title="Suggest where to move mugs",
        annotations=READS.model_copy(update={"open_world_hint": True}),
        meta=tool_meta("suggest_position"),  # the desk view (MCP Apps)
    )
    async def suggest_position(
        ctx: Context,
        analysis_id: AnalysisIdArg = None,
        image: OptionalImageArg = None,
        scene: SceneArg = None,
        rules: RulesArg = None,
        use_saved_rules: UseSavedRulesArg = True,
        detail: DetailArg = "compact",
    ) -> Annotated[CallToolResult, SuggestResult]:
        """Use when the user asks where a mug should go, or after analyze_image reported violated
        rules. Give exactly one of: `analysis_id` (from analyze_image: fastest), `image`, or `scene`
        (Scene JSON from the client's own detector). Returns per-mug moves in pixels and cm with a
        plain instruction ('Move the mug 13 cm to the right'), the rules each move satisfies, rules
        no position can satisfy (conflicts), and a picture with arrows."""

        async def op(progress: Progress | None) -> Outcome:
            out = await app.suggest(
                image=image,
                analysis_id=analysis_id,
                scene=scene,
                rules=rules,
                use_saved_rules=use_saved_rules,
                progress=progress,
            )
            assert isinstance(out.result, SuggestResult)
            return Outcome(suggestion_view(out.result, detail), out.picture)

        return await run("suggest_position", ctx, op)

    @server.tool(
        title="Find similar stored layouts", annotations=READS.model_copy(update={"open_world_hint": True})
    )
    async def search_similar_layouts(
        ctx: Context,
        analysis_id: AnalysisIdArg = None,
        image: OptionalImageArg = None,
        text: SearchTextArg = None,
        k: KArg = 5,
        filters: FiltersArg = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Use when the user asks whether a setup was seen before, or wants examples of similar desks
        (e.g. 'layouts like this one that had no violations'). Give exactly one of `analysis_id`,
        `image` or `text` (text needs the CLIP embedder); `k` results; optional `filters`. Returns
        the nearest stored analyses with scores and mugpos://layouts/{id} URIs."""

        async def op(progress: Progress | None) -> Outcome:
            return Outcome(
                await app.search(
                    image=image, analysis_id=analysis_id, text=text, k=k, filters=filters, progress=progress
                )
            )

        return await run("search_similar_layouts", ctx, op)

    @server.tool(
        title="Save a placement rule",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def add_rule(
        ctx: Context, text: RuleTextArg = None, rule: RuleArg = None, severity: SeverityArg = None
    ) -> Annotated[CallToolResult, RuleInfo]:
        """Use when the user states a lasting preference about where mugs may stand, e.g. 'keep mugs
        at least 6 inches from laptops' or 'no drinks on the keyboard side'. Pass the user's words as
        `text` (or a structured `rule`); it is interpreted, saved and checked on every later
        analysis. If unsure how it will be read, call explain_rule first. Returns the saved rule with
        its id and interpretation."""

        async def op(progress: Progress | None) -> Outcome:
            return Outcome(await app.add_rule(text, rule.model_dump() if rule else None, severity))

        return await run("add_rule", ctx, op)

    @server.tool(title="List saved rules", annotations=READS.model_copy(update={"open_world_hint": False}))
    async def list_rules(ctx: Context, detail: DetailArg = "compact") -> Annotated[CallToolResult, RuleList]:
        """Use to see which placement rules are saved (ids, text, interpretation, enabled), e.g.
        before removing one or to tell the user what is being checked. detail='full' adds each
        rule's structured form."""

        async def op(progress: Progress | None) -> Outcome:
            return Outcome(rules_view(await app.list_rules(), detail))

        return await run("list_rules", ctx, op)

    @server.tool(
        title="Remove a saved rule",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def remove_rule(rule_id: RuleIdArg, ctx: Context) -> Annotated[CallToolResult, Removed]:
        """Use when the user no longer wants a saved rule checked. Takes the rule id from
        list_rules."""

        async def op(progress: Progress | None) -> Outcome:
            return Outcome(await app.remove_rule(rule_id))

        return await run("remove_rule", ctx, op)

    @server.tool(
        title="Explain how a rule would be read",
        annotations=READS.model_copy(update={"open_world_hint": False}),
    )
    async def explain_rule(text: ExplainTextArg, ctx: Context) -> Annotated[CallToolResult, Explanation]:
        """Use before add_rule when a rule's wording is unusual, or when the user asks what a rule
        means. Nothing is saved. Returns whether it is understood, its interpretation in units (e.g.
        'every mug >= 15.24 cm from every laptop'), and the nearest supported phrasings when it is
        not."""

        async def op(progress: Progress | None) -> Outcome:
            return Outcome(await app.explain_rule(text))

        return await run("explain_rule", ctx, op)

    refuse_unknown_arguments(server)


def refuse_unknown_arguments(server: MCPServer[Any]) -> None:
    """Make each tool's argument model refuse keys it does not know (the SDK's ignores them), naming
    the known ones; the published input schemas say `additionalProperties: false`."""
    for tool in server._tool_manager.list_tools():
        base = tool.fn_metadata.arg_model

        class Strict(base):  # type: ignore[valid-type, misc]
            model_config = ConfigDict(extra="forbid", title=f"arguments of {tool.name}")

            @model_validator(mode="before")
            @classmethod
            def _known(cls, data: Any) -> Any:
                refuse_unknown_keys(cls, data, "argument")
                return data

        Strict.__name__ = base.__name__
        tool.fn_metadata.arg_model = Strict
        tool.parameters = strict_schema(tool.parameters, Strict)


def strict_schema(sdk_schema: dict[str, Any], strict: type[BaseModel]) -> dict[str, Any]:
    """`strict.model_json_schema(by_alias=True)`, from the schema the SDK already generated for the
    same fields: only the title and `additionalProperties: false` differ. Generating it again cost
    ~0.1 s of the server's start (the Scene and Rule arguments are large); tests/mcp check that
    the two are the same."""
    title = strict.model_config.get("title")
    return dict(sorted({**sdk_schema, "title": title, "additionalProperties": False}.items()))


async def run_tool(app: Mugpos, name: str, op: Operation, ctx: Context | None) -> CallToolResult:
    """Run one operation; cancellation of the request cancels this coroutine and so the operation.

    The result's `_meta["mugpos/timing"]` carries when the call reached this function and when its
    result was built (epoch seconds) and how long building took, so a client (and `mugpos bench`)
    can tell the door's own cost from the work."""
    received = time.time()
    result = await _run_tool(app, name, op, ctx)
    answered = time.time()
    result.meta = {**(result.meta or {}), "mugpos/timing": _timing(received, answered, result)}
    return result


def _timing(received: float, answered: float, result: CallToolResult) -> dict[str, float]:
    timings = (result.structured_content or {}).get("timings") or {}
    total = float(timings.get("total_ms") or 0.0) if isinstance(timings, dict) else 0.0
    server_ms = (answered - received) * 1000
    return {
        "received": round(received, 6),
        "answered": round(answered, 6),
        "server_ms": round(server_ms, 2),
        "result_ms": round(max(server_ms - total, 0.0), 2) if total else 0.0,
        "process_cpu_s": round(time.process_time(), 3),  # this server's CPU time so far (cold starts)
    }


async def _run_tool(app: Mugpos, name: str, op: Operation, ctx: Context | None) -> CallToolResult:
    t0 = time.perf_counter()
    try:
        async with app.watchdog.track() if app.watchdog is not None else contextlib.nullcontext():
            outcome = await op(_progress(ctx))
    except MugposError as exc:
        log.info("tool %s refused: %s (%s)", name, exc.code, exc.message)
        telemetry.record_call(name, "refused", time.perf_counter() - t0, exc.code)
        return error_result(exc)
    except Exception:
        error_id = uuid.uuid4().hex[:10]
        log.exception("tool %s failed (error id %s)", name, error_id)
        telemetry.record_call(name, "error", time.perf_counter() - t0, "internal")
        return CallToolResult(
            content=[
                TextContent(
                    type="text",
                    text=f"internal error (id {error_id}): mugpos could not finish {name}; "
                    "the server log has the details under this id",
                )
            ],
            is_error=True,
        )
    telemetry.record_call(name, "ok", time.perf_counter() - t0)
    return tool_result(name, outcome)


def _progress(ctx: Context | None) -> Progress | None:
    if ctx is None:
        return None

    async def report(fraction: float, message: str) -> None:
        try:
            await ctx.report_progress(round(fraction * 100, 1), 100.0, message)
        except Exception as exc:  # progress is a courtesy; it never fails the work
            log.debug("progress not sent: %s", exc)

    return report


def error_result(exc: MugposError) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=error_text(exc))], is_error=True)


def error_text(exc: MugposError) -> str:
    """Message, hint and (for rules) the nearest supported phrasings: what an assistant can act on."""
    lines = [f"error ({exc.code}): {exc.message}"]
    if exc.hint:
        lines.append(f"Hint: {exc.hint}")
    nearest = exc.details.get("suggestions") or exc.details.get("nearest") or []
    if isinstance(nearest, list | tuple) and nearest:
        lines.append("Nearest supported phrasings:")
        lines.extend(f"- {s}" for s in list(nearest)[:6])
    if "schema" in exc.details:
        lines.append(
            "The structured rule schema (for add_rule's `rule`) is in mugpos://vocabulary as rule_schema."
        )
    return "\n".join(lines)


def tool_result(name: str, outcome: Outcome) -> CallToolResult:
    data = outcome.result.model_dump(mode="json")
    as_json = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    headline = text_summary(name, outcome.result)
    content: list[Any] = [TextContent(type="text", text=headline), TextContent(type="text", text=as_json)]
    if outcome.picture is not None:
        room = MAX_RESULT_BYTES - 2 * len(as_json.encode()) - len(headline.encode()) - 4096
        picture = fit_picture(outcome.picture, max_base64_bytes=room)
        if picture is None:
            content[0] = TextContent(
                type="text", text=headline + "\n(picture omitted: the result is too large)"
            )
        else:
            content.append(
                ImageContent(
                    type="image", data=base64.b64encode(picture.data).decode(), mime_type=picture.mime
                )
            )
    return CallToolResult(content=content, structured_content=data)


def fit_picture(picture: Picture, *, max_base64_bytes: int) -> Picture | None:
    """Shrink the picture until its base64 fits; None when even a small one would not."""
    if max_base64_bytes <= 0:
        return None
    if _b64_len(len(picture.data)) <= max_base64_bytes:
        return picture
    from PIL import Image

    img = Image.open(io.BytesIO(picture.data))
    img.load()
    img = img.convert("RGB")
    data = picture.data
    while True:
        ratio = (max_base64_bytes / _b64_len(len(data))) ** 0.5 * 0.9
        w, h = img.size
        new = (max(1, int(w * min(ratio, 0.9))), max(1, int(h * min(ratio, 0.9))))
        if min(new) < MIN_PICTURE_SIDE:
            return None
        img = img.resize(new, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="WEBP", quality=70)
        data = buf.getvalue()
        if _b64_len(len(data)) <= max_base64_bytes:
            return Picture(data, "image/webp")


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)
