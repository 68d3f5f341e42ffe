"""Who is calling an HTTP door, and what they may do: one answer for MCP, A2A, the dashboard, webhooks.

The HTTP guard (`mugpos.access.guard.HttpGuard`) authenticates every request once (a static bearer
token or an OAuth JWT) and leaves a `Caller` on the ASGI scope. A door never parses tokens itself:

    from mugpos.access import READ, WRITE, caller, requires, with_scopes

    @requires(READ)                          # a Starlette endpoint: 401/403 challenge otherwise
    async def page(request): who = caller(request); ...

    routes = with_scopes(a2a_routes, READ)   # or wrap routes built by someone else

Refusals are RFC 6750 challenges (`WWW-Authenticate: Bearer error="insufficient_scope",
scope="mugpos:write", resource_metadata="..."`), so an OAuth client knows how to step up. With no
authentication configured (loopback only) the caller is `local` and holds every scope.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

    from mugpos.operations import Mugpos

READ = "mugpos:read"
"""Analyse photos, suggest moves, search layouts, read rules, resources and dashboards."""
WRITE = "mugpos:write"
"""Change saved state that is not an analysis: add or remove rules, register webhooks."""
ALL_SCOPES: tuple[str, ...] = (READ, WRITE)

CALLER_KEY = "mugpos.caller"
CHALLENGE_KEY = "mugpos.resource_metadata"  # the RFC 9728 metadata URL, when OAuth is on

Method = Literal["oauth", "token", "none"]


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one request. Never holds the token itself."""

    id: str
    """OAuth client_id, `token` for the static bearer token, `local` when auth is off."""
    scopes: frozenset[str]
    method: Method
    subject: str | None = None
    issuer: str | None = None

    def has(self, *scopes: str) -> bool:
        return all(s in self.scopes for s in scopes)

    def missing(self, *scopes: str) -> list[str]:
        return [s for s in scopes if s not in self.scopes]

    def label(self) -> str:
        """A short, log-safe name: `oauth:<client>` / `token` / `local`."""
        return f"oauth:{self.id}" if self.method == "oauth" else self.id


@dataclass
class HttpDoor:
    """What an HTTP door adds to the server beside /mcp (see `mugpos.mcp_server.http.door_factories`).

    Every route is behind the guard: Host/Origin checks, rate and body limits, and authentication
    (`public_paths` are served without a token but still host-checked and rate-limited, e.g. an
    A2A agent card). `lifespan`, if given, is entered once when the server starts.
    """

    routes: Sequence[BaseRoute]
    public_paths: Sequence[str] = ()
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None
    name: str = field(default="door")


RouteFactory = Callable[["Mugpos"], "Sequence[BaseRoute] | HttpDoor"]
"""A door's hook: given the app, its routes (or an `HttpDoor` for public paths and a lifespan)."""


LOCAL = Caller(id="local", scopes=frozenset(ALL_SCOPES), method="none")


def caller_from_scope(scope: Scope) -> Caller | None:
    return scope.get(CALLER_KEY)


def caller(conn: HTTPConnection) -> Caller:
    """The request's caller. Behind the guard it is always set; outside it (a bare test app) `LOCAL`."""
    return conn.scope.get(CALLER_KEY) or LOCAL


def challenge_headers(
    scope: Scope, error: str, description: str, needed: Sequence[str] = ()
) -> dict[str, str]:
    """`WWW-Authenticate` for a 401/403, naming the needed scopes and the metadata URL when known."""
    parts = [f'error="{error}"', f'error_description="{description}"']
    if needed:
        parts.append(f'scope="{" ".join(needed)}"')
    metadata = scope.get(CHALLENGE_KEY)
    if metadata:
        parts.append(f'resource_metadata="{metadata}"')
    return {"www-authenticate": "Bearer " + ", ".join(parts)}


def refusal(scope: Scope, missing: Sequence[str]) -> tuple[int, bytes, dict[str, str]]:
    """(status, JSON body, headers) refusing a caller who lacks `missing` scopes (403) or is anonymous."""
    who = caller_from_scope(scope)
    if who is None:  # no guard in front: nobody authenticated this request
        status, code, message = 401, "unauthorized", "a valid bearer token is required"
        headers = challenge_headers(scope, "invalid_token", "authentication required", missing)
    else:
        status, code = 403, "insufficient_scope"
        message = f"this needs the scope {' '.join(missing)}"
        headers = challenge_headers(
            scope, "insufficient_scope", f"required scope: {' '.join(missing)}", missing
        )
    body = {
        "error": {
            "code": code,
            "message": message,
            "hint": "ask the authorization server for a token with these scopes: " + " ".join(missing),
        }
    }
    return status, json.dumps(body).encode(), headers


def refusal_response(conn: HTTPConnection, missing: Sequence[str]) -> Response:
    from starlette.responses import Response

    status, body, headers = refusal(conn.scope, missing)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def check(conn: HTTPConnection, *scopes: str) -> Response | None:
    """None when the caller holds every scope, else the 401/403 response to return."""
    who = caller_from_scope(conn.scope)
    missing = list(scopes) if who is None else who.missing(*scopes)
    return refusal_response(conn, missing) if missing else None


Endpoint = Callable[..., Awaitable[Any]]


def requires(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Decorate a Starlette endpoint `async def f(request)` so it answers 401/403 without `scopes`."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Any, *args: Any, **kwargs: Any) -> Any:
            denied = check(request, *scopes)
            if denied is not None:
                return denied
            return await endpoint(request, *args, **kwargs)

        return guarded

    return wrap


class RequireScopes:
    """ASGI wrapper: pass only callers holding `scopes` (for sub-apps and routes built elsewhere)."""

    def __init__(self, app: ASGIApp, scopes: Sequence[str]) -> None:
        self.app = app
        self.scopes = tuple(scopes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        who = caller_from_scope(scope)
        missing = list(self.scopes) if who is None else who.missing(*self.scopes)
        if not missing:
            await self.app(scope, receive, send)
            return
        status, body, headers = refusal(scope, missing)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def with_scopes(routes: Sequence[BaseRoute], *scopes: str) -> list[BaseRoute]:
    """The same routes, each answering 401/403 unless the caller holds `scopes`.

    Works for `Route` (wraps its ASGI app) and `Mount` (wraps the mounted app), e.g. the A2A SDK's
    `create_jsonrpc_routes(...)` output.
    """
    from starlette.routing import Mount, Route

    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route | Mount):
            route.app = RequireScopes(route.app, scopes)
        else:  # pragma: no cover - WebSocketRoute and custom routes: refuse to guess
            raise TypeError(
                f"with_scopes cannot wrap {type(route).__name__}; wrap its app with RequireScopes"
            )
        out.append(route)
    return out


__all__ = [
    "ALL_SCOPES",
    "LOCAL",
    "READ",
    "WRITE",
    "Caller",
    "HttpDoor",
    "RequireScopes",
    "RouteFactory",
    "caller",
    "check",
    "requires",
    "with_scopes",
]
