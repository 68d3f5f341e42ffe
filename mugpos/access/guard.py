"""`HttpGuard`: the one ASGI middleware in front of every HTTP route of `mugpos serve`.

In order: Host/Origin (DNS rebinding), authentication (static token or OAuth JWT, via a
`TokenVerifier`), a per-client rate limit, and the request body limit, then the caller is left on the
scope for the routes (`mugpos.access.caller`). A pure ASGI middleware, so streaming responses (SSE)
pass through untouched. Tokens are never logged or echoed; refusals say what to fix.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mugpos.access import ALL_SCOPES, CALLER_KEY, CHALLENGE_KEY, LOCAL, Caller, challenge_headers
from mugpos.access.hosts import HostPolicy

log = logging.getLogger("mugpos.access")

HEALTH_PATHS = frozenset({"/healthz"})  # no host check, no token: load balancers and pod probes
METADATA_PREFIX = "/.well-known/oauth-protected-resource"  # RFC 9728: readable without a token


@dataclass
class TokenBucket:
    """Per-client buckets: `rate_per_min` requests a minute, bursts up to the same number."""

    rate_per_min: int
    clock: Any = time.monotonic
    max_clients: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds to wait before the next request would be."""
        if self.rate_per_min <= 0:
            return 0.0
        now = self.clock()
        capacity = float(self.rate_per_min)
        per_s = self.rate_per_min / 60.0
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            allowed = 0.0
        else:
            self._buckets[key] = (tokens, now)
            allowed = (1.0 - tokens) / per_s
        if len(self._buckets) > self.max_clients:
            self._prune(now, capacity / per_s)
        return allowed

    def _prune(self, now: float, full_after_s: float) -> None:
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after_s:  # a full bucket is the same as no entry
                del self._buckets[key]


def caller_of(token: AccessToken) -> Caller:
    oauth = token.client_id != "token"
    issuer = (token.claims or {}).get("iss")
    return Caller(
        id=token.client_id,
        scopes=frozenset(token.scopes),
        method="oauth" if oauth else "token",
        subject=token.subject,
        issuer=str(issuer) if issuer else None,
    )


class HttpGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier | None,
        hosts: HostPolicy,
        rate_limit_per_min: int,
        max_request_bytes: int,
        resource_metadata_url: str | None = None,
        public_paths: Iterable[str] = (),
        scopes_hint: Sequence[str] = ALL_SCOPES,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.hosts = hosts
        self.bucket = TokenBucket(rate_limit_per_min)
        self.max_request_bytes = max_request_bytes
        self.resource_metadata_url = resource_metadata_url
        self.public_paths = frozenset(public_paths)
        self.scopes_hint = tuple(scopes_hint)

    def is_public(self, path: str) -> bool:
        return path in HEALTH_PATHS or path in self.public_paths or path.startswith(METADATA_PREFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no door serves one; unguarded it would bypass every check
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.resource_metadata_url:
            scope[CHALLENGE_KEY] = self.resource_metadata_url
        if path not in HEALTH_PATHS:
            if not self.hosts.host_ok(headers.get("host")):
                log.warning("refused %s %s from %s: host %r not allowed", scope.get("method"), path, client,
                            (headers.get("host") or "")[:100])  # fmt: skip
                await _refuse(send, 421, "host_not_allowed", "this server does not answer to that host name",
                              "add the name to MUGPOS_ALLOWED_HOSTS or set MUGPOS_PUBLIC_URL")  # fmt: skip
                return
            if not self.hosts.origin_ok(headers.get("origin"), headers.get("host")):
                log.warning("refused %s %s from %s: origin %r not allowed", scope.get("method"), path, client,
                            (headers.get("origin") or "")[:100])  # fmt: skip
                await _refuse(send, 403, "origin_not_allowed", "requests from that web origin are refused",
                              "call from the server's own origin, or add the host to MUGPOS_ALLOWED_HOSTS")  # fmt: skip
                return
        given = _bearer(headers.get("authorization"))
        token = await self.verifier.verify_token(given) if self.verifier and given else None
        # Key by address, and by token fingerprint only for a valid token: one noisy client cannot
        # starve others, and wrong guesses share one bucket (no fresh budget, no growth per guess).
        key = f"{client}|{token.token}" if token is not None else client
        wait = self.bucket.take(key)
        if wait > 0:
            await _refuse(send, 429, "rate_limited", "too many requests", f"retry in {wait:.1f} s",
                          {"retry-after": str(max(1, round(wait)))})  # fmt: skip
            return
        if self.verifier is not None and token is None and not self.is_public(path):
            log.warning("refused %s %s from %s: %s", scope.get("method"), path, client,
                        "no bearer token" if given is None else "invalid bearer token")  # fmt: skip
            await self._unauthorized(scope, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_request_bytes:
            await self._too_large(send)
            return
        if token is not None:
            scope[CALLER_KEY] = caller_of(token)
            user = AuthenticatedUser(token)
            scope["user"], scope["auth"] = user, AuthCredentials(token.scopes)
            reset = auth_context_var.set(user)
            try:
                await self._limited(scope, receive, send)
            finally:
                auth_context_var.reset(reset)
            return
        if self.verifier is None:
            scope[CALLER_KEY] = LOCAL
        await self._limited(scope, receive, send)

    async def _unauthorized(self, scope: Scope, send: Send) -> None:
        """The same 401 for a missing and a wrong token: a refusal says nothing about the guess."""
        needed = self.scopes_hint if self.resource_metadata_url else ()
        hdrs = challenge_headers(scope, "invalid_token", "a valid bearer token is required", needed)
        if not self.resource_metadata_url:
            hdrs["www-authenticate"] = hdrs["www-authenticate"].replace(
                "Bearer ", 'Bearer realm="mugpos", ', 1
            )
        hint = (
            f"get a token from the authorization server named in {self.resource_metadata_url}"
            if self.resource_metadata_url
            else "send 'Authorization: Bearer <MUGPOS_AUTH_TOKEN>'"
        )
        await _refuse(send, 401, "unauthorized", "a valid bearer token is required", hint, hdrs)

    async def _too_large(self, send: Send) -> None:
        await _refuse(send, 413, "request_too_large", f"request body over {self.max_request_bytes} bytes",
                      "send images by URL or path, or raise MUGPOS_MAX_REQUEST_BYTES")  # fmt: skip

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, cutting off a body (chunked or lying about its length) past the limit."""
        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_request_bytes:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app answers to a cut-off body, the client gets the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._too_large(send)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


async def _refuse(
    send: Send, status: int, code: str, message: str, hint: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "hint": hint}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
