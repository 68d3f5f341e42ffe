"""`serve(app, transport, host, port)`: stdio (default), SSE or streamable HTTP.

HTTP transports run one Starlette app (MCP, OAuth metadata, the other doors; `mugpos.mcp_server.http`)
under uvicorn behind `HttpGuard` (Host/Origin, bearer token or OAuth JWT, rate limit, body limit).
Bound to anything but loopback they refuse to start without MUGPOS_AUTH_TOKEN or MUGPOS_OAUTH_ISSUER.
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


def check_bind(transport: str, host: str, settings: Settings, port: int = DEFAULT_PORT) -> None:
    """Raise `ConfigError` (exit code 2) for an unknown transport or a public bind without a token."""
    if transport not in TRANSPORTS:
        raise ConfigError(f"unknown transport {transport!r}", hint=f"use one of: {', '.join(TRANSPORTS)}")
    if transport == "stdio":
        return
    if not is_loopback(host) and auth_token(settings) is None and not settings.oauth_issuer:
        raise ConfigError(
            f"refusing to serve {transport} on {host} without a bearer token",
            hint="set MUGPOS_AUTH_TOKEN (clients send 'Authorization: Bearer <token>') or MUGPOS_OAUTH_ISSUER, "
            "or bind to 127.0.0.1",
        )
    from mugpos.mcp_server.http import build_access

    build_access(settings, transport, host, port)  # an OAuth setup that cannot work fails now


def http_app(app: Mugpos, transport: Transport, host: str, port: int = DEFAULT_PORT) -> ASGIApp:
    """The guarded ASGI app for an HTTP transport (see `mugpos.mcp_server.http`)."""
    from mugpos.mcp_server.http import http_app as build

    return build(app, transport, host, port)


def serve(app: Mugpos, transport: str = "stdio", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until stopped. Raises `ConfigError` before binding anything if the setup is unsafe."""
    check_bind(transport, host, app.settings, port)
    if transport == "stdio" and app.engine.loads_light:
        # No torch to import: start the detector now, so the ONNX session is built and run once
        # (with the interpreter lock released) while this thread imports the MCP SDK; the other
        # stages' imports wait for the server's lifespan, so `initialize` does not wait for them. A
        # torch load starts from the lifespan only (its imports would hold up the handshake).
        app.engine.start(hold_stages=True)
    anyio.run(_serve, app, transport, host, port)


async def _serve(app: Mugpos, transport: str, host: str, port: int) -> None:
    try:
        if transport == "stdio":
            from mugpos.mcp_server.server import build_server
            from mugpos.mcp_server.stdio import run_stdio
            from mugpos.webhooks import door as webhook_door

            # Warm-up starts in the server's lifespan, after stdout is claimed for the protocol.
            # Webhooks (when configured) leave stdio sessions too: the outbox sender runs alongside.
            hooks = webhook_door(app).lifespan
            assert hooks is not None
            async with hooks():
                await run_stdio(build_server(app))
            return
        import uvicorn

        asgi = http_app(app, transport, host, port)  # type: ignore[arg-type]
        app.start()  # SSE enters the server lifespan per client; warm up now, once
        from mugpos.deploy.watchdog import IdleWatchdog

        # On a timed pod (idle shutdown on and a pod id known) stop the pod when nobody calls.
        app.watchdog = IdleWatchdog.from_settings(app.settings)
        if app.watchdog is not None:
            app.watchdog.start()
            print(f"mugpos: idle shutdown after {app.settings.idle_shutdown_s:.0f} s", file=sys.stderr)
        path = "/sse" if transport == "sse" else "/mcp"
        auth = _auth_summary(app.settings)
        print(
            f"mugpos: serving {transport} on http://{_url_host(host)}:{port}{path} ({auth})", file=sys.stderr
        )
        config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="auto")
        await _uvicorn_server(config).serve()
    finally:
        with anyio.CancelScope(shield=True):
            if app.watchdog is not None:
                await app.watchdog.aclose()
            await _close(app)


def _uvicorn_server(config: Any) -> Any:
    """uvicorn's Server, telling open dashboard streams to end when a stop signal arrives.

    uvicorn waits for every open response before it stops; a dashboard's event stream never ends
    by itself, so without this one open page would hold a pod's shutdown forever.
    """
    import uvicorn

    from mugpos import telemetry

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            telemetry.FEED.closing = True  # a flag only: safe in a signal handler
            super().handle_exit(sig, frame)

    return Server(config)


async def _close(app: Any) -> None:
    try:
        await app.aclose()
    except Exception:  # closing must not hide why serving ended
        log.exception("closing mugpos failed")


def _auth_summary(settings: Settings) -> str:
    parts = []
    if settings.oauth_issuer:
        parts.append(f"OAuth tokens from {settings.oauth_issuer}")
    if auth_token(settings):
        parts.append("bearer token")
    return " or ".join(parts) + " required" if parts else "no token (loopback)"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
