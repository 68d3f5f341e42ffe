"""The operator's HTTP routes: `/metrics` (Prometheus) and `/dashboard` (a live page).

The HTTP server mounts `door(app)` beside `/mcp`, behind the same guard (static token or OAuth,
the read scope), except the page's static shell, which holds no data. The page is plain HTML, CSS and JavaScript shipped inside the
package (no CDN, no build step); it reads `/dashboard/state` once and then follows
`/dashboard/events`, a server-sent event stream: a `status` message every few seconds and an
`event` message the moment an analysis or a suggestion is made. The stream runs only while a page
is open; with no page open the analysis path pays one append to a short ring (see telemetry).
"""

from __future__ import annotations

import asyncio
import json
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mugpos import telemetry
from mugpos.access import READ, HttpDoor, with_scopes
from mugpos.dashboard.snapshot import event_view, refresh_gauges, snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mugpos.operations import Mugpos

log = logging.getLogger("mugpos.dashboard")

STATUS_EVERY_S = 2.0  # also how long a stopping server waits for an open page's stream to end
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
NO_STORE = {"cache-control": "no-store"}


def static_text(name: str) -> str:
    return resources.files("mugpos.dashboard").joinpath("static", name).read_text(encoding="utf-8")


def routes(app: Mugpos) -> list[Route]:
    """Starlette routes for `/metrics` and `/dashboard/...`, bound to one `Mugpos`."""

    async def metrics(_: Request) -> Response:
        try:
            refresh_gauges(await snapshot(app, with_recent=False))
        except Exception:  # a broken status read must not hide the counters
            log.exception("refreshing gauges for /metrics failed")
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(telemetry.render(), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        if not request.url.path.endswith("/"):
            return RedirectResponse(request.url.path + "/", status_code=308)
        return Response(static_text("index.html"), media_type=STATIC["index.html"], headers=NO_STORE)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": {"code": "not_found", "message": f"no file {name}"}}, 404)
        return Response(static_text(name), media_type=STATIC[name], headers={"cache-control": "max-age=300"})

    async def state(_: Request) -> Response:
        return JSONResponse(await snapshot(app), headers=NO_STORE)

    async def picture(request: Request) -> Response:
        seq = request.path_params["seq"]
        for event in telemetry.FEED.recent():
            pic = event.data.get("picture") if isinstance(event.data, dict) else None
            if event.seq == seq and pic is not None:
                return Response(pic.data, media_type=pic.mime, headers={"cache-control": "max-age=3600"})
        return JSONResponse(
            {"error": {"code": "not_found", "message": f"picture {seq} is no longer kept"}}, 404
        )

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _stream(app, request),
            media_type="text/event-stream",
            headers={**NO_STORE, "x-accel-buffering": "no"},
        )

    data = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard/state", state, methods=["GET"]),
        Route("/dashboard/events", events, methods=["GET"]),
        Route("/dashboard/pictures/{seq:int}", picture, methods=["GET"]),
    ]
    shell = [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", page, methods=["GET"]),
        Route("/dashboard/static/{name}", static, methods=["GET"]),
    ]
    return [*with_scopes(data, READ), *shell]


def door(app: Mugpos) -> HttpDoor:
    """The operator's door for `mugpos.mcp_server.http.door_factories`.

    Everything that carries data (metrics, state, the event stream, pictures) needs a caller with
    the read scope, like /mcp. The page's shell (the same HTML, CSS and JavaScript as in the wheel,
    no data) is public so a browser can open it; it then sends the token as a bearer header.
    """
    public = ["/dashboard", "/dashboard/", *(f"/dashboard/static/{name}" for name in STATIC)]
    return HttpDoor(routes=routes(app), public_paths=public, name="dashboard")


async def _stream(app: Mugpos, request: Request) -> AsyncIterator[str]:
    """SSE: the full state first, then each new event at once and a status tick every few seconds."""
    with telemetry.FEED.subscribe() as queue:
        yield _sse("state", await snapshot(app))
        while not telemetry.FEED.closing:  # the server is stopping: end, the page reconnects
            try:
                event = await asyncio.wait_for(queue.get(), STATUS_EVERY_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield _sse("status", await snapshot(app, with_recent=False))
                continue
            yield _sse("event", event_view(event))


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"
