"""The A2A door as Starlette routes, mounted on the one HTTP server behind its guard.

`A2ADoor(app).routes()` gives the agent card at `/.well-known/agent-card.json` and the JSON-RPC
endpoint at `/a2a` (streaming over SSE) served by a2a-sdk's own dispatcher over
`MugposAgentExecutor`. Tasks live in the SDK's `DatabaseTaskStore` on SQLite under the data dir
(`MUGPOS_A2A_TASK_STORE=memory` keeps them in memory), so a client can still get a task and its
artifacts after the server restarts. Tasks belong to the caller the guard authenticated: another
caller cannot read or cancel them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH

from mugpos.a2a.card import A2A_PATH, build_agent_card, discover_oauth
from mugpos.a2a.executor import MugposAgentExecutor
from mugpos.access import READ, HttpDoor, caller, with_scopes

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

CARD_PATH = AGENT_CARD_WELL_KNOWN_PATH


def open_task_store(settings: Settings) -> tuple[TaskStore, Any]:
    """The task store and what to dispose of on close (the SQLAlchemy engine, if any)."""
    if settings.a2a_task_store == "memory":
        return InMemoryTaskStore(), None
    from a2a.server.tasks import DatabaseTaskStore
    from sqlalchemy.ext.asyncio import create_async_engine

    path = settings.data_dir / "a2a" / "tasks.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    return DatabaseTaskStore(engine), engine


class _Caller(User):
    def __init__(self, name: str, authenticated: bool) -> None:
        self._name, self._auth = name, authenticated

    @property
    def is_authenticated(self) -> bool:
        return self._auth

    @property
    def user_name(self) -> str:
        return self._name


class CallerContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context with the guard's caller as the user (tasks are scoped to it) and its
    scopes in `state["scopes"]`; the caller's credentials never reach the task."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        who = caller(request)
        context.user = _Caller(who.label(), who.method != "none")
        context.state["scopes"] = who.scopes
        headers = context.state.get("headers") or {}
        context.state["headers"] = {  # the SDK reads A2A-Version here
            k: v
            for k, v in headers.items()
            if k.lower() not in ("authorization", "cookie", "proxy-authorization")
        }
        return context


class A2ADoor:
    def __init__(self, app: Mugpos, base_url: str | None = None) -> None:
        self.app = app
        self.base_url = base_url
        self._cards: dict[str, tuple[dict[str, Any], str]] = {}
        self.task_store, self._engine = open_task_store(app.settings)
        self.handler = DefaultRequestHandlerV2(
            agent_executor=MugposAgentExecutor(app),
            task_store=self.task_store,
            agent_card=build_agent_card(app.settings, base_url or "http://127.0.0.1:8765"),
        )

    async def card_json(self, base_url: str) -> tuple[dict[str, Any], str]:
        """The card as served (JSON, ETag) for the URL the client reached us at."""
        if base_url not in self._cards:
            oauth = None
            issuer = self.app.settings.oauth_issuer
            if issuer:  # the token endpoint comes from the issuer's own metadata
                async with httpx.AsyncClient(timeout=10) as http:
                    oauth = await discover_oauth(issuer, http)
            body = agent_card_to_dict(build_agent_card(self.app.settings, base_url, oauth))
            etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32] + '"'
            if oauth is not None or not issuer:  # an issuer that did not answer: ask again next time
                self._cards[base_url] = (body, etag)
            return body, etag
        return self._cards[base_url]

    async def _card(self, request: Request) -> Response:
        from starlette.responses import JSONResponse, Response

        base = self.base_url or str(request.base_url).rstrip("/")
        body, etag = await self.card_json(base)
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(body, headers={"ETag": etag})

    def routes(self) -> list[BaseRoute]:
        """The card (public: it is how a client learns the auth scheme) and the JSON-RPC endpoint
        (read scope; changing saved rules asks for the write scope inside)."""
        from starlette.routing import Route

        rpc = create_jsonrpc_routes(self.handler, A2A_PATH, context_builder=CallerContextBuilder())
        return [Route(CARD_PATH, self._card, methods=["GET"]), *with_scopes(rpc, READ)]

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


def door(app: Mugpos) -> HttpDoor:
    """The A2A door for `mugpos.mcp_server.http.door_factories`."""
    a2a = A2ADoor(app)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await a2a.aclose()

    return HttpDoor(routes=a2a.routes(), public_paths=[CARD_PATH], lifespan=lifespan, name="a2a")
