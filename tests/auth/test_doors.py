"""The door hook: routes another door adds get the same guard as /mcp, and `mugpos.access` scopes.

A stand-in door (two endpoints, a public path, a lifespan) is plugged into the real HTTP app through
`http_app(..., doors=[factory])`, exactly as the dashboard and A2A doors plug in through
`door_factories()`. Tokens come from the real oidc-provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from tests_auth_support import BOTH, OidcServer

from mugpos.access import READ, WRITE, HttpDoor, caller, requires, with_scopes
from mugpos.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
STATIC = "tok-door-tests-91b2"
events: list[str] = []


@requires(READ)
async def look(request: Request) -> JSONResponse:
    who = caller(request)
    return JSONResponse({"caller": who.label(), "method": who.method, "scopes": sorted(who.scopes)})


@requires(WRITE)
async def change(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"changed_by": caller(request).label()})


async def card(_: Request) -> JSONResponse:
    return JSONResponse({"name": "stand-in door"})


async def raw(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def door_lifespan() -> AsyncIterator[None]:
    events.append("start")
    yield
    events.append("stop")


def stand_in_door(_: Any) -> HttpDoor:
    routes: list[BaseRoute] = [
        Route("/door/look", look),
        Route("/door/change", change, methods=["POST"]),
        Route("/.well-known/door-card.json", card),
        *with_scopes([Route("/door/raw", raw)], WRITE),
    ]
    return HttpDoor(routes=routes, public_paths=["/.well-known/door-card.json"], lifespan=door_lifespan)


@pytest.fixture
def app(oidc: OidcServer, tmp_path: Path) -> Iterator[Any]:
    from mugpos.mcp_server.http import http_app
    from mugpos.operations import Mugpos

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        detector_weights="yolov8n.yaml",
        embedder="none",
        warmup=False,
        auth_token=STATIC,  # type: ignore[arg-type]
        oauth_issuer=oidc.issuer,
        oauth_leeway_s=0,
        max_request_bytes=4096,
    )
    yield http_app(Mugpos(settings), "streamable-http", "127.0.0.1", PORT, doors=[stand_in_door])


def client(app: Any, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


async def test_door_routes_need_a_token(app: Any) -> None:
    async with client(app) as c:
        r = await c.get("/door/look")
        assert r.status_code == 401
        assert (
            f'resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp"'
            in r.headers["www-authenticate"]
        )
        assert (await c.post("/door/change", content=b"{}")).status_code == 401
        assert (await c.get("/.well-known/door-card.json")).json() == {"name": "stand-in door"}  # public
    async with client(app, "wrong") as c:
        assert (await c.get("/door/look")).status_code == 401


async def test_scopes_and_caller_from_an_oauth_token(app: Any, oidc: OidcServer) -> None:
    resource = BASE + "/mcp"
    async with client(app, oidc.token("reader", resource, "mugpos:read")) as c:
        r = await c.get("/door/look")
        assert r.status_code == 200 and r.json() == {
            "caller": "oauth:reader",
            "method": "oauth",
            "scopes": [READ],
        }
        for denied in (await c.post("/door/change", content=b"{}"), await c.get("/door/raw")):
            assert denied.status_code == 403
            assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
            assert 'scope="mugpos:write"' in denied.headers["www-authenticate"]
    async with client(app, oidc.token("full", resource, BOTH)) as c:
        assert (await c.post("/door/change", content=b"{}")).json() == {"changed_by": "oauth:full"}
        assert (await c.get("/door/raw")).status_code == 200
    async with client(app, STATIC) as c:  # the static token holds every scope
        assert (await c.get("/door/look")).json()["caller"] == "token"
        assert (await c.post("/door/change", content=b"{}")).status_code == 200


async def test_host_origin_and_body_limits_cover_doors(app: Any) -> None:
    async with client(app, STATIC, host="evil.example.com") as c:
        assert (await c.get("/door/look")).status_code == 421
        assert (await c.get("/.well-known/door-card.json")).status_code == 421
        assert (await c.get("/healthz")).status_code == 200  # probes may use any name
    async with client(app, STATIC, origin="https://evil.example.com") as c:
        assert (await c.post("/door/change", content=b"{}")).status_code == 403
    async with client(app, STATIC, origin=BASE) as c:
        assert (await c.post("/door/change", content=b"{}")).status_code == 200

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while streaming
        for _ in range(10):
            yield b"x" * 1024

    async with client(app, STATIC) as c:
        assert (await c.post("/door/change", content=b"x" * 5000)).status_code == 413
        r = await c.post("/door/change", content=chunks())
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


async def test_door_lifespan_runs_with_the_server(app: Any) -> None:
    events.clear()
    sent: list[dict[str, Any]] = []
    queue = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert events == ["start", "stop"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websockets_are_closed_before_any_route(app: Any) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/door/look", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
