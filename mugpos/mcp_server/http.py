"""The HTTP server of `mugpos serve`: /mcp (or /sse), /healthz, OAuth metadata and every other door.

One Starlette app, one `HttpGuard` in front of all of it (Host/Origin, auth, rate and body limits),
so a door added here is protected the same way as /mcp without doing anything.

Adding a door (dashboard, A2A, webhooks, ...): write a factory `(app: Mugpos) -> list[BaseRoute]`
(or an `HttpDoor` for public paths and a lifespan) in your package and add it to `door_factories()`
below. Inside your endpoints use `mugpos.access` (`requires(READ)`, `caller(request)`,
`with_scopes(routes, WRITE)`) to ask for scopes; never parse tokens yourself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mugpos.access import ALL_SCOPES, HttpDoor, RouteFactory
from mugpos.access.hosts import HostPolicy, host_policy
from mugpos.errors import ConfigError

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings


def door_factories() -> list[RouteFactory]:
    """The HTTP doors served beside MCP. Add yours here: one import, one entry."""
    from mugpos.a2a import door as a2a_door  # /.well-known/agent-card.json and /a2a
    from mugpos.dashboard import door as operator_door  # /metrics and /dashboard
    from mugpos.webhooks import door as webhook_door  # no routes: the outbox sender's lifespan

    factories: list[RouteFactory] = [operator_door, a2a_door, webhook_door]
    return factories


@dataclass(frozen=True)
class Access:
    """How this server authenticates and which names it answers to, from the settings and the bind."""

    verifier: TokenVerifier | None
    hosts: HostPolicy
    resource_url: str | None  # the RFC 8707 resource (this server's public MCP URL) when OAuth is on
    issuer: str | None

    @property
    def metadata_url(self) -> str | None:
        if self.resource_url is None:
            return None
        from mcp.server.auth.routes import build_resource_metadata_url
        from pydantic import AnyHttpUrl

        return str(build_resource_metadata_url(AnyHttpUrl(self.resource_url)))


def public_base_url(settings: Settings, host: str, port: int) -> str | None:
    """Where clients reach this server: MUGPOS_PUBLIC_URL, RunPod's proxy URL, or the loopback bind."""
    from mugpos.access.hosts import RUNPOD_PROXY, is_loopback_name

    if settings.public_url:
        return settings.public_url.rstrip("/")
    pod = settings.runpod_pod_id or os.environ.get("RUNPOD_POD_ID")
    if pod:
        return f"https://{pod.lower()}-{port}.{RUNPOD_PROXY}"
    name = host.strip("[]").lower()
    if is_loopback_name(name):
        return f"http://{'[' + name + ']' if ':' in name else name}:{port}"
    return None


def mcp_path(transport: str) -> str:
    return "/sse" if transport == "sse" else "/mcp"


def build_access(settings: Settings, transport: str, host: str, port: int) -> Access:
    """Verifier, host policy and resource URL; `ConfigError` for an OAuth setup that cannot work."""
    from mugpos.access.tokens import JwksCache, JwtVerifier, StaticTokenVerifier, check_issuer_url
    from mugpos.mcp_server.transports import auth_token

    hosts = host_policy(
        public_url=settings.public_url,
        allowed_hosts=settings.allowed_hosts,
        port=port,
        runpod_pod_id=settings.runpod_pod_id,
    )
    token = auth_token(settings)
    static = StaticTokenVerifier(token) if token else None
    if not settings.oauth_issuer:
        return Access(static, hosts, None, None)
    issuer = check_issuer_url(settings.oauth_issuer)
    base = public_base_url(settings, host, port)
    if base is None:
        raise ConfigError(
            f"MUGPOS_OAUTH_ISSUER is set but this server's public URL is unknown (bound to {host})",
            hint="set MUGPOS_PUBLIC_URL to the URL clients use, e.g. https://<pod id>-8765.proxy.runpod.net",
        )
    resource = base + mcp_path(transport)
    keys = JwksCache(issuer, jwks_url=settings.oauth_jwks_url, ttl_s=settings.oauth_jwks_ttl_s,
                     refresh_cooldown_s=settings.oauth_jwks_refresh_cooldown_s)  # fmt: skip
    jwt_verifier = JwtVerifier(
        issuer,
        settings.oauth_audience or resource,
        keys=keys,
        leeway_s=settings.oauth_leeway_s,
        accept_plain_jwt=settings.oauth_accept_plain_jwt,
    )
    verifier: TokenVerifier = jwt_verifier if static is None else EitherVerifier(static, jwt_verifier)
    return Access(verifier, hosts, resource, issuer)


class EitherVerifier:
    """The static token (constant-time) first, then OAuth: a person's curl and a connector side by side."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self.verifiers = verifiers

    async def verify_token(self, token: str) -> Any:
        for verifier in self.verifiers:
            found = await verifier.verify_token(token)
            if found is not None:
                return found
        return None


def _door(made: Sequence[BaseRoute] | HttpDoor) -> HttpDoor:
    return made if isinstance(made, HttpDoor) else HttpDoor(routes=list(made))


def http_app(
    app: Mugpos,
    transport: str,
    host: str,
    port: int = 8765,
    *,
    doors: Sequence[RouteFactory] | None = None,
) -> ASGIApp:
    """The guarded ASGI app for an HTTP transport: MCP, /healthz, OAuth metadata and the doors."""
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route

    from mugpos.access.guard import HttpGuard
    from mugpos.mcp_server.auth import McpGate
    from mugpos.mcp_server.server import build_server

    settings = app.settings
    access = build_access(settings, transport, host, port)
    server = build_server(app)
    # Host/Origin are checked by HttpGuard for every route; the SDK's own check would only cover
    # /mcp and only on loopback, and would refuse the proxy names we allow.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    limit = settings.max_request_bytes
    if transport == "sse":
        inner = server.sse_app(host=host, max_request_body_size=limit, transport_security=security)
    else:
        inner = server.streamable_http_app(
            host=host, max_request_body_size=limit, transport_security=security
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "models_ready": app.engine.ready})

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if access.resource_url and access.issuer:
        from mcp.server.auth.routes import create_protected_resource_routes
        from mcp.server.auth.settings import AuthSettings

        # AuthSettings keeps a path-less issuer exactly as written (RFC 8414 compares it verbatim);
        # the audience is checked by our verifier, hence validate_token_resource=False.
        auth = AuthSettings(
            issuer_url=access.issuer,  # type: ignore[arg-type]
            resource_server_url=access.resource_url,  # type: ignore[arg-type]
            required_scopes=list(ALL_SCOPES),
            validate_token_resource=False,
        )
        assert auth.resource_server_url is not None
        routes += create_protected_resource_routes(
            resource_url=auth.resource_server_url,
            authorization_servers=[auth.issuer_url],
            scopes_supported=auth.required_scopes,
            resource_name="mugpos",
        )
    built = [_door(factory(app)) for factory in (door_factories() if doors is None else doors)]
    for door in built:
        routes += list(door.routes)
    routes.append(Mount("/", app=McpGate(inner, enforce_scopes=access.verifier is not None)))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(inner.router.lifespan_context(inner))
            for door in built:
                if door.lifespan is not None:
                    await stack.enter_async_context(door.lifespan())
            yield

    return HttpGuard(
        Starlette(routes=routes, lifespan=lifespan),
        verifier=access.verifier,
        hosts=access.hosts,
        rate_limit_per_min=settings.rate_limit_per_min,
        max_request_bytes=limit,
        resource_metadata_url=access.metadata_url,
        public_paths=[p for door in built for p in door.public_paths],
    )
