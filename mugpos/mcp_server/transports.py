"""`serve(app, transport, host, port)`: stdio (default), SSE or streamable HTTP.

HTTP transports run the SDK's Starlette app under uvicorn behind `HttpGuard` (bearer token, rate
limit, body limit). Bound to anything but loopback they refuse to start without MUGPOS_AUTH_TOKEN.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import TYPE_CHECKING, Any, Literal

import anyio

from mugpos.errors import ConfigError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

log = logging.getLogger("mugpos.mcp")

Transport = Literal["stdio", "sse", "streamable-http"]
TRANSPORTS: tuple[str, ...] = ("stdio", "sse", "streamable-http")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def auth_token(settings: Settings) -> str | None:
    """The configured bearer token; an empty or blank MUGPOS_AUTH_TOKEN counts as none."""
    token = settings.auth_token.get_secret_value().strip() if settings.auth_token is not None else ""
    return token or None


def check_bind(transport: str, host: str, settings: Settings) -> None:
    """Raise `ConfigError` (exit code 2) for an unknown transport or a public bind without a token."""
    if transport not in TRANSPORTS:
        raise ConfigError(f"unknown transport {transport!r}", hint=f"use one of: {', '.join(TRANSPORTS)}")
    if transport != "stdio" and not is_loopback(host) and auth_token(settings) is None:
        raise ConfigError(
            f"refusing to serve {transport} on {host} without a bearer token",
            hint="set MUGPOS_AUTH_TOKEN (clients send 'Authorization: Bearer <token>'), or bind to 127.0.0.1",
        )


def http_app(app: Mugpos, transport: Transport, host: str) -> ASGIApp:
    """The guarded ASGI app for an HTTP transport (also handy for mounting elsewhere)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from mugpos.mcp_server.auth import HttpGuard
    from mugpos.mcp_server.server import build_server

    server = build_server(app)
    settings = app.settings

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "models_ready": app.engine.ready})

    from mugpos.dashboard import routes as operator_routes

    for route in operator_routes(app):  # /metrics and /dashboard, behind the same guard
        server.custom_route(route.path, methods=sorted(route.methods or {"GET"}))(route.endpoint)

    if transport == "sse":
        inner = server.sse_app(host=host, max_request_body_size=settings.max_request_bytes)
    else:
        inner = server.streamable_http_app(host=host, max_request_body_size=settings.max_request_bytes)
    return HttpGuard(
        inner,
        token=auth_token(settings),
        rate_limit_per_min=settings.rate_limit_per_min,
        max_request_bytes=settings.max_request_bytes,
    )


def serve(app: Mugpos, transport: str = "stdio", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until stopped. Raises `ConfigError` before binding anything if the setup is unsafe."""
    check_bind(transport, host, app.settings)
    anyio.run(_serve, app, transport, host, port)


async def _serve(app: Mugpos, transport: str, host: str, port: int) -> None:
    try:
        if transport == "stdio":
            from mugpos.mcp_server.server import build_server

            # Warm-up starts in the server's lifespan, after stdout is claimed for the protocol.
            await build_server(app).run_stdio_async()
            return
        import uvicorn

        asgi = http_app(app, transport, host)  # type: ignore[arg-type]
        app.start()  # SSE enters the server lifespan per client; warm up now, once
        from mugpos.deploy.watchdog import IdleWatchdog

        # On a timed pod (idle shutdown on and a pod id known) stop the pod when nobody calls.
        app.watchdog = IdleWatchdog.from_settings(app.settings)
        if app.watchdog is not None:
            app.watchdog.start()
            print(f"mugpos: idle shutdown after {app.settings.idle_shutdown_s:.0f} s", file=sys.stderr)
        path = "/sse" if transport == "sse" else "/mcp"
        auth = "bearer token required" if auth_token(app.settings) else "no token (loopback)"
        print(
            f"mugpos: serving {transport} on http://{_url_host(host)}:{port}{path} ({auth})", file=sys.stderr
        )
        config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="auto")
        await uvicorn.Server(config).serve()
    finally:
        with anyio.CancelScope(shield=True):
            if app.watchdog is not None:
                await app.watchdog.aclose()
            await _close(app)


async def _close(app: Any) -> None:
    try:
        await app.aclose()
    except Exception:  # closing must not hide why serving ended
        log.exception("closing mugpos failed")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
