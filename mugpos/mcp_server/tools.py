"""The seven MCP tools: a thin door over `mugpos.operations.TOOLS`.

Each tool's parameters are generated from its argument model in `operations.TOOLS` (same names,
types, constraints and descriptions) and its outputSchema is the result model, so the MCP surface
cannot drift from the CLI and the RunPod worker. The server adds only what is MCP-specific: when to
use each tool, annotations, progress, the picture as image content, and errors an assistant can act
on.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mugpos import telemetry
from mugpos.errors import MugposError
from mugpos.mcp_server.desk_app import tool_meta
from mugpos.operations import TOOLS, Mugpos, Outcome, Picture, Progress, call_tool

if TYPE_CHECKING:
    from mcp.server import MCPServer

log = logging.getLogger("mugpos.mcp")

# A whole tool result (JSON twice: structured + text, plus the base64 picture) stays under this.
MAX_RESULT_BYTES = 768 * 1024
MIN_PICTURE_SIDE = 160


@dataclass(frozen=True)
class ToolDoc:
    title: str
    description: str
    annotations: ToolAnnotations


TOOL_DOCS: dict[str, ToolDoc] = {
    "analyze_image": ToolDoc(
        "Analyze a photo of mugs",
        "Use when the user shares or points to a photo of a desk, table or counter and asks where a "
        "mug/cup is, whether it is safe, or what is around it. Detects every object, measures the "
        "scene in centimetres (scale estimated from known objects unless px_per_cm is given), "
        "locates each mug (pixels, normalised, zone, cm from edges), lists relations to nearby "
        "objects and checks the saved rules plus any `rules` given here. Returns an annotated "
        "picture and an analysis_id; the analysis is stored, so pass the id to suggest_position or "
        "search_similar_layouts instead of sending the image again. `image`: local path, http(s) "
        "URL, data URI, raw base64, or a mugpos:// resource URI.",
        ToolAnnotations(
            title="Analyze a photo of mugs",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    ),
    "suggest_position": ToolDoc(
        "Suggest where to move mugs",
        "Use when the user asks where a mug should go, or after analyze_image reported violated "
        "rules. Give exactly one of: `analysis_id` (from analyze_image: fastest), `image`, or "
        "`scene` (Scene JSON from the client's own detector). Returns per-mug moves in pixels and "
        "cm with a plain instruction ('Move the mug 13 cm to the right'), the rules each move "
        "satisfies, rules no position can satisfy (conflicts), and a picture with arrows.",
        ToolAnnotations(
            title="Suggest where to move mugs",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    ),
    "search_similar_layouts": ToolDoc(
        "Find similar stored layouts",
        "Use when the user asks whether a setup was seen before, or wants examples of similar desks "
        "(e.g. 'show me layouts like this that had no violations'). Give exactly one of "
        "`analysis_id`, `image` or `text`; `k` results, optional `filters` (labels, "
        "has_violations, time range). Returns the nearest stored analyses with scores and "
        "mugpos://layouts/{id} URIs.",
        ToolAnnotations(
            title="Find similar stored layouts",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    ),
    "add_rule": ToolDoc(
        "Save a placement rule",
        "Use when the user states a lasting preference about where mugs may stand, e.g. 'keep mugs "
        "at least 6 inches from laptops' or 'no drinks on the keyboard side'. Pass the user's words "
        "as `text` (or a structured `rule`); it is interpreted, saved and checked on every later "
        "analysis. If unsure how it will be read, call explain_rule first. Returns the saved rule "
        "with its id and interpretation.",
        ToolAnnotations(
            title="Save a placement rule",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    ),
    "list_rules": ToolDoc(
        "List saved rules",
        "Use to see which placement rules are saved (ids, text, interpretation, enabled), e.g. "
        "before removing one or to tell the user what is being checked.",
        ToolAnnotations(
            title="List saved rules",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    ),
    "remove_rule": ToolDoc(
        "Remove a saved rule",
        "Use when the user no longer wants a saved rule checked. Takes the rule id from list_rules.",
        ToolAnnotations(
            title="Remove a saved rule",
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    ),
    "explain_rule": ToolDoc(
        "Explain how a rule would be read",
        "Use before add_rule when a rule's wording is unusual, or when the user asks what a rule "
        "means. Nothing is saved. Returns whether it is understood, its interpretation in units "
        "(e.g. 'every mug >= 15.24 cm from every laptop'), and the nearest supported phrasings "
        "when it is not.",
        ToolAnnotations(
            title="Explain how a rule would be read",
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    ),
}


def register_tools(server: MCPServer[Any], app: Mugpos) -> None:
    for name, spec in TOOLS.items():
        doc = TOOL_DOCS[name]
        server.add_tool(
            _tool_function(app, name, spec.args, spec.result),
            name=name,
            title=doc.title,
            description=doc.description,
            annotations=doc.annotations,
            meta=tool_meta(name),  # the desk view (MCP Apps) on analyze_image and suggest_position
        )


def _tool_function(app: Mugpos, name: str, args: type[BaseModel], result: type[BaseModel]) -> Any:
    """A coroutine whose signature mirrors `args`, so the SDK publishes the same input schema."""
    params: list[inspect.Parameter] = []
    hints: dict[str, Any] = {}
    for field_name, field in args.model_fields.items():
        extra: dict[str, Any] = {}
        if field.description:
            extra["description"] = field.description
        if field.title:
            extra["title"] = field.title
        annotation = Annotated[(field.annotation, *field.metadata, Field(**extra))]  # type: ignore[misc]
        default = (
            inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        )
        params.append(
            inspect.Parameter(
                field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
        hints[field_name] = annotation
    returns = Annotated[CallToolResult, result]
    params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))

    async def tool(ctx: Context, **arguments: Any) -> CallToolResult:
        return await run_tool(app, name, arguments, ctx)

    tool.__name__ = tool.__qualname__ = name
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {**hints, "ctx": Context, "return": returns}
    return tool


async def run_tool(app: Mugpos, name: str, arguments: dict[str, Any], ctx: Context | None) -> CallToolResult:
    """Run one operation; cancellation of the request cancels this coroutine and so the operation.

    The result's `_meta["mugpos/timing"]` carries when the call reached this function and when its
    result was built (epoch seconds) and how long building took, so a client (and `mugpos bench`)
    can tell the door's own cost from the work."""
    received = time.time()
    result = await _run_tool(app, name, arguments, ctx)
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


async def _run_tool(app: Mugpos, name: str, arguments: dict[str, Any], ctx: Context | None) -> CallToolResult:
    t0 = time.perf_counter()
    try:
        async with app.watchdog.track() if app.watchdog is not None else contextlib.nullcontext():
            outcome = await call_tool(app, name, arguments, _progress(ctx))
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
    headline = headline_for(name, outcome.result)
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


def headline_for(name: str, result: BaseModel) -> str:
    """One short human line (plus pointers) placed before the JSON in the text content."""
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
