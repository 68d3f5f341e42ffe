"""HTTP guard for the SSE and streamable-HTTP transports: bearer token, rate limit, body limit.

A pure ASGI middleware, so streaming responses (SSE) pass through untouched. The token is compared
in constant time and never logged or echoed; refusals say what to fix without revealing anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("mugpos.mcp.auth")

PUBLIC_PATHS = frozenset({"/healthz"})


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


def token_matches(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class HttpGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        rate_limit_per_min: int,
        max_request_bytes: int,
    ) -> None:
        self.app = app
        self.token = token or None
        self.bucket = TokenBucket(rate_limit_per_min)
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client") or ("unknown", 0)
        given = _bearer(headers.get("authorization"))
        public = scope.get("path") in PUBLIC_PATHS
        token_ok = self.token is not None and token_matches(given, self.token)
        authorized = self.token is None or public or token_ok
        # Key by address, and by token fingerprint only for the right token: one noisy client cannot
        # starve others, and wrong guesses share one bucket (no fresh budget, no growth per guess).
        key = f"{client[0]}|{_fingerprint(given)}" if token_ok and given else client[0]
        wait = self.bucket.take(key)
        if wait > 0:
            await _refuse(
                send, 429, "rate_limited", "too many requests", f"retry in {wait:.1f} s",
                {"retry-after": str(max(1, round(wait)))},
            )  # fmt: skip
            return
        if not authorized:
            log.warning("refused %s %s from %s: %s", scope.get("method"), scope.get("path"), client[0],
                        "no bearer token" if given is None else "wrong bearer token")  # fmt: skip
            await _refuse(
                send, 401, "unauthorized", "a valid bearer token is required",
                "send 'Authorization: Bearer <MUGPOS_AUTH_TOKEN>'",
                {"www-authenticate": 'Bearer realm="mugpos"'},
            )  # fmt: skip
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_request_bytes:
            await _refuse(
                send, 413, "request_too_large", f"request body over {self.max_request_bytes} bytes",
                "send images by URL or path, or raise MUGPOS_MAX_REQUEST_BYTES",
            )  # fmt: skip
            return
        # Chunked bodies without a Content-Length are cut off by the SDK's own body limit.
        await self.app(scope, receive, send)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


async def _refuse(
    send: Send, status: int, code: str, message: str, hint: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "hint": hint}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
