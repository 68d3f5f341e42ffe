"""Helpers for the agent-door tests: a real HTTP server (`mugpos serve`'s own app, uvicorn on
loopback) and the a2a-sdk client pointed at it. (A module of its own: `conftest` is a name every
test folder shares.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from testkit import free_port  # re-exported for the agent tests

from mugpos.settings import Settings


@contextlib.asynccontextmanager
async def serve_app(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """mugpos's HTTP server with the A2A door mounted, on a free loopback port; yields (url, Mugpos)."""
    import uvicorn

    from mugpos.operations import Mugpos

    app = Mugpos(settings)
    port = free_port()
    asgi = build_http_app(app, port)
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await app.aclose()


def build_http_app(app: Any, port: int) -> Any:
    """`mugpos serve --transport streamable-http`'s own app: every door behind the one guard."""
    from mugpos.mcp_server.http import http_app

    return http_app(app, "streamable-http", "127.0.0.1", port)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def a2a_client(url: str, token: str | None = None, streaming: bool = True) -> Any:
    from a2a.client import ClientConfig, create_client

    http = httpx.AsyncClient(headers=bearer(token), timeout=120)
    return await create_client(
        url,
        client_config=ClientConfig(streaming=streaming, httpx_client=http),
        resolver_http_kwargs={"headers": bearer(token)},
    )
