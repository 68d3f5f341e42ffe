"""The A2A agent executor: one task per message, run over the same operations as the MCP tools.

A batch of photos runs a few at a time (`a2a_concurrency`; the engine batches their model calls),
streams a status update per photo and stage, and yields one artifact per photo as soon as it is done:
the result JSON (data part) and its picture (file part). A photo that cannot be read yields an
error artifact; the others still finish, and the task completes unless every photo failed.
Cancelling stops the photos in flight (their coroutines are cancelled) and marks the task canceled.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Part, TaskState

from mugpos.a2a.parts import (
    AgentRequest,
    Photo,
    data_part,
    error_body,
    picture_part,
    read_message,
    text_part,
)
from mugpos.access import READ, WRITE
from mugpos.errors import BackendError, ModelError, MugposError

if TYPE_CHECKING:
    from mugpos.operations import Mugpos, Outcome

log = logging.getLogger("mugpos.a2a")


class MugposAgentExecutor(AgentExecutor):
    def __init__(self, app: Mugpos) -> None:
        self.app = app

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(_without_photo_bytes(context.message))
            if context.task_id:
                task.id = context.task_id
            if context.context_id:
                task.context_id = context.context_id
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        try:
            request = read_message(context.message, self.app.settings.a2a_max_photos)
            _check_scopes(request, context)
            for text in request.rules if request.skill in ("analyze-desk", "suggest-placement") else []:
                await self.app.interpreter.interpret(text)  # an unreadable rule refuses the whole task, once
        except MugposError as exc:
            await updater.reject(
                updater.new_agent_message([text_part(exc.one_line()), data_part(error_body(exc))])
            )
            return
        await updater.start_work(updater.new_agent_message([text_part(_plan(request))]))
        try:
            if request.skill in ("analyze-desk", "suggest-placement") and request.photos:
                await self._photos(request, updater)
            else:
                await self._single(request, updater)
        except MugposError as exc:
            # The caller's input (a rule, a scene, an id): rejected; our side (models, stores): failed.
            end = updater.failed if isinstance(exc, BackendError | ModelError) else updater.reject
            await end(updater.new_agent_message([text_part(exc.one_line()), data_part(error_body(exc))]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or (context.current_task.id if context.current_task else "")
        context_id = context.context_id or (context.current_task.context_id if context.current_task else "")
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.cancel(
            updater.new_agent_message([text_part("cancelled; photos already done keep their artifacts")])
        )

    # --- a batch of photos -----------------------------------------------------------------
    async def _photos(self, request: AgentRequest, updater: TaskUpdater) -> None:
        n = len(request.photos)
        gate = asyncio.Semaphore(self.app.settings.a2a_concurrency)
        done: list[dict[str, Any]] = []

        async def one(i: int, photo: Photo) -> None:
            async with gate:
                summary = await self._photo(request, updater, i, n, photo)
            done.append(summary)
            ok = sum(1 for d in done if d["ok"])
            await _status(updater, f"{len(done)}/{n} photos done ({ok} ok): {photo.name}",
                          {"done": len(done), "of": n, "ok": ok})  # fmt: skip

        await asyncio.gather(*(one(i, p) for i, p in enumerate(request.photos)))
        ok = [d for d in done if d["ok"]]
        failed = [d for d in done if not d["ok"]]
        summary = {"skill": request.skill, "photos": n, "ok": len(ok), "failed": len(failed),
                   "results": sorted(done, key=lambda d: d["index"])}  # fmt: skip
        text = f"{len(ok)} of {n} photos done" + (f"; {len(failed)} refused" if failed else "")
        await updater.add_artifact([data_part(summary)], name="batch-summary")
        message = updater.new_agent_message([text_part(text), data_part(summary)])
        if ok:
            await updater.complete(message)
        else:
            await updater.failed(message)

    async def _photo(
        self, request: AgentRequest, updater: TaskUpdater, i: int, n: int, photo: Photo
    ) -> dict[str, Any]:
        async def progress(fraction: float, stage: str) -> None:
            await _status(updater, f"photo {i + 1}/{n} ({photo.name}): {stage}",
                          {"photo": i + 1, "of": n, "name": photo.name, "stage": stage,
                           "fraction": round(fraction, 3)})  # fmt: skip

        await progress(0.0, "loading")
        try:
            outcome = await self._run_photo(request, photo.ref, progress)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, MugposError):
                log.exception("A2A photo %s failed", photo.name)
            body = error_body(exc, photo.name)
            await updater.add_artifact([data_part(body)], name=f"photo-{i + 1}-error",
                                       metadata={"photo": i + 1, "name": photo.name, "ok": False})  # fmt: skip
            await _status(updater, f"photo {i + 1}/{n} ({photo.name}) refused: {body['error']['message']}",
                          {"photo": i + 1, "of": n, "name": photo.name, "stage": "refused"})  # fmt: skip
            return {"index": i + 1, "name": photo.name, "ok": False, **body}
        result = outcome.result.model_dump(mode="json")
        parts: list[Part] = [data_part(result)]
        if outcome.picture is not None:
            ext = outcome.picture.mime.split("/")[-1]
            parts.append(
                picture_part(outcome.picture.data, outcome.picture.mime, f"photo-{i + 1}-annotated.{ext}")
            )
        if request.args.get("report") and request.skill == "analyze-desk":
            from mugpos.reports import render_report

            pic = outcome.picture
            report = await render_report(self.app.settings, result, None, pic.data if pic else None)
            parts.append(picture_part(report.data, report.mime, f"photo-{i + 1}-report.png"))
        aid = result.get("analysis_id")
        await updater.add_artifact(parts, name=f"photo-{i + 1}-{'analysis' if request.skill == 'analyze-desk' else 'suggestion'}",
                                   metadata={"photo": i + 1, "name": photo.name, "ok": True, "analysis_id": aid})  # fmt: skip
        return {
            "index": i + 1,
            "name": photo.name,
            "ok": True,
            "analysis_id": aid,
            "summary": result.get("summary"),
        }

    async def _run_photo(self, request: AgentRequest, ref: str, progress: Any) -> Outcome:
        use_saved = bool(request.args.get("use_saved_rules", True))
        if request.skill == "suggest-placement":
            return await self.app.suggest(image=ref, rules=request.rules or None, use_saved_rules=use_saved,
                                          progress=progress)  # fmt: skip
        px = request.args.get("px_per_cm")
        return await self.app.analyze(ref, request.rules or None, px_per_cm=float(px) if px else None,
                                      use_saved_rules=use_saved, progress=progress)  # fmt: skip

    # --- everything else: one call, one result ------------------------------------------------
    async def _single(self, request: AgentRequest, updater: TaskUpdater) -> None:
        from mugpos.operations import call_tool

        tool, args = _tool_call(request)
        outcome = await call_tool(self.app, tool, args)
        parts: list[Part] = [data_part(outcome.result.model_dump(mode="json"))]
        if outcome.picture is not None:
            ext = outcome.picture.mime.split("/")[-1]
            parts.append(picture_part(outcome.picture.data, outcome.picture.mime, f"{tool}.{ext}"))
        await updater.add_artifact(parts, name=tool)
        summary = getattr(outcome.result, "summary", None) or f"{tool} done"
        await updater.complete(updater.new_agent_message([text_part(str(summary))]))


def _tool_call(request: AgentRequest) -> tuple[str, dict[str, Any]]:
    """The MCP tool and arguments a non-photo request maps to (arguments validated by the tool)."""
    a = dict(request.args)
    if request.skill == "manage-rules":
        action = a.pop("action")
        if action == "list":
            return "list_rules", {}
        if action == "add":
            return "add_rule", {k: a[k] for k in ("text", "rule", "severity") if k in a}
        if action == "remove":
            return "remove_rule", {"rule_id": a.get("rule_id", "")}
        if action == "explain":
            return "explain_rule", {"text": a.get("text", "")}
        raise MugposError(f"unknown rule action {action!r}", code="bad_message",
                          hint="actions: list, add, remove, explain")  # fmt: skip
    if request.skill == "search-layouts":
        return "search_similar_layouts", {
            k: a[k] for k in ("image", "analysis_id", "text", "k", "filters") if k in a
        } | ({"k": int(a["k"])} if "k" in a else {})
    if request.skill == "suggest-placement":
        keys = ("image", "analysis_id", "scene", "use_saved_rules")
        return "suggest_position", {k: a[k] for k in keys if k in a} | (
            {"rules": request.rules} if request.rules else {}
        )
    keys = ("image", "px_per_cm", "use_saved_rules")
    return "analyze_image", {k: a[k] for k in keys if k in a} | (
        {"rules": request.rules} if request.rules else {}
    )


def _check_scopes(request: AgentRequest, context: RequestContext) -> None:
    """Changing saved rules needs the write scope; everything else the read scope."""
    scopes = context.call_context.state.get("scopes", frozenset()) if context.call_context else frozenset()
    writes = request.skill == "manage-rules" and request.args.get("action") in (
        "add",
        "remove",
        "enable",
        "disable",
    )
    needed = WRITE if writes else READ
    if needed not in scopes:
        raise MugposError(
            f"this needs the scope {needed}", code="insufficient_scope",
            hint=f"ask the authorization server for a token with the scope {needed}",
        )  # fmt: skip


def _without_photo_bytes(message: Message) -> Message:
    """The message as the task's history keeps it: each photo's bytes replaced by a line naming it,
    so the stored task and the first streamed event do not carry the batch back (megabytes a photo)."""
    kept = Message()
    kept.CopyFrom(message)
    for part in kept.parts:
        if part.HasField("raw"):
            digest = hashlib.sha256(part.raw).hexdigest()[:16]
            part.text = f"[photo {part.filename or '(unnamed)'}: {len(part.raw)} bytes, sha256 {digest}...]"
    return kept


def _plan(request: AgentRequest) -> str:
    if request.photos:
        rules = f" with {len(request.rules)} rule(s)" if request.rules else ""
        return f"{request.skill}: {len(request.photos)} photo(s){rules}"
    return f"{request.skill}: {request.args.get('action', '')}".rstrip(": ")


async def _status(updater: TaskUpdater, text: str, meta: dict[str, Any]) -> None:
    await updater.update_status(TaskState.TASK_STATE_WORKING, updater.new_agent_message([text_part(text)]),
                                metadata=meta)  # fmt: skip
