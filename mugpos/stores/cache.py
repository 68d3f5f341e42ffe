"""The dual-layer cache: L2 in this process (an LRU bounded in bytes), L1 in Redis (shared by workers).

Naming follows issue 5: **L2 = in-process**, **L1 = Redis**. Reads go L2 then L1 (an L1 hit is copied
into L2); writes go through both. The cache never fails a request: Redis errors and timeouts mark the
tier degraded, calls stop until a reconnect attempt after exponential backoff (0.5 s doubling to 30 s),
and the status says so. `redis` is imported only when a Redis URL is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mugpos import telemetry
from mugpos.stores.health import ComponentHealth

if TYPE_CHECKING:
    from mugpos.settings import Settings

log = logging.getLogger("mugpos.stores")

CACHE_VERSION = "v1"
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


def cache_key(kind: str, *parts: str) -> str:
    """`mugpos:v1:{kind}:{sha256}`; parts are length-prefixed so ("ab", "c") != ("a", "bc")."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode("utf-8")
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return f"mugpos:{CACHE_VERSION}:{kind}:{h.hexdigest()}"


def _hit_rate(hits: int, misses: int) -> float | None:
    total = hits + misses
    return round(hits / total, 4) if total else None


class LRUBytes:
    """Thread-safe LRU bounded in bytes.

    Values are usually `bytes`; any other object (a GPU tensor, say) needs a caller-given `size`, so
    the engine can keep tensors where they live. A value bigger than the whole budget is not kept.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: str, value: Any, size: int | None = None) -> bool:
        """Store `value`; returns False when it cannot be kept (disabled or larger than the budget)."""
        if size is None:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError("LRUBytes.put needs size= for values that are not bytes")
            size = len(value)
        if size < 0:
            raise ValueError("size must be >= 0")
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            if size > self.max_bytes:
                return False
            self._data[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes and self._data:
                _, (_, evicted) = self._data.popitem(last=False)
                self.bytes -= evicted
                self.evictions += 1
            return True

    def pop(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.pop(key, None)
            if item is None:
                return None
            self.bytes -= item[1]
            return item[0]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0

    def status(self) -> ComponentHealth:
        with self._lock:
            return ComponentHealth(
                name="cache l2",
                backend="in-process",
                details={
                    "enabled": self.enabled,
                    "hits": self.hits,
                    "misses": self.misses,
                    "hit_rate": _hit_rate(self.hits, self.misses),
                    "evictions": self.evictions,
                    "items": len(self._data),
                    "bytes": self.bytes,
                    "max_bytes": self.max_bytes,
                },
            )


def redact_url(url: str) -> str:
    """The URL without its password, for status and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RedisTier:
    """Redis behind a circuit breaker: bounded calls, never raises, backs off while Redis is away."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.25,
        ttl_s: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.degraded = False
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._backoff = BACKOFF_START_S
        self._retry_at = 0.0

    # --- connection ------------------------------------------------------------------------
    def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client is bound to the loop it connected on; a new loop (another asyncio.run) gets
            # a new client and the old one is dropped without awaiting on a dead loop.
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
            self._loop = loop
        return self._client

    def _allowed(self) -> bool:
        if not self.degraded:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        # Half-open: let this one call probe, and hold the others back until it reports.
        self._retry_at = now + self._backoff
        return True

    def _ok(self) -> None:
        if self.degraded:
            self.degraded = False
            self._backoff = BACKOFF_START_S
            log.warning("mugpos: Redis cache %s is back", redact_url(self.url))

    async def _fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        self.last_error_at = time.time()
        if self.degraded:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
        else:
            self.degraded = True
            self._backoff = BACKOFF_START_S
            log.warning(
                "mugpos: Redis cache %s unavailable (%s); serving from the in-process cache",
                redact_url(self.url),
                self.last_error,
            )
        self._retry_at = self._clock() + self._backoff
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.aclose(), self.timeout_s)
            except Exception as close_exc:  # closing a broken client must not fail a request
                del close_exc

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        if not self._allowed():
            return False, None
        try:
            client = self._get_client()
            result = await asyncio.wait_for(getattr(client, op)(*args, **kwargs), self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc)
            return False, None
        self._ok()
        return True, result

    # --- operations --------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        ok, value = await self._call("get", key)
        if not ok:
            return None
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(value)

    async def set(self, key: str, value: bytes) -> bool:
        ok, _ = await self._call("set", key, value, ex=self.ttl_s)
        return ok

    async def ping(self) -> bool:
        ok, _ = await self._call("ping")
        return ok

    def status(self) -> ComponentHealth:
        """Degraded (never failing: the in-process tier answers) while the circuit is open."""
        reconnect_in = max(self._retry_at - self._clock(), 0.0) if self.degraded else None
        return ComponentHealth(
            name="cache l1",
            backend="redis",
            degraded=self.degraded,
            reason=f"Redis unavailable: {self.last_error}" if self.degraded else None,
            details={
                "enabled": True,
                "url": redact_url(self.url),
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": _hit_rate(self.hits, self.misses),
                "errors": self.errors,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "reconnect_in_s": round(reconnect_in, 3) if reconnect_in is not None else None,
                "backoff_s": self._backoff if self.degraded else None,
                "ttl_s": self.ttl_s,
            },
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            try:
                await asyncio.wait_for(client.aclose(), self.timeout_s)
            except Exception as exc:  # closing is best effort
                del exc


class DualCache:
    """L2 (in-process LRU) in front of L1 (Redis, optional). See the module docstring."""

    def __init__(
        self, settings: Settings, *, l2: LRUBytes | None = None, l1: RedisTier | None = None
    ) -> None:
        self.l2 = l2 if l2 is not None else LRUBytes(settings.cache_l2_bytes)
        if l1 is None and settings.redis_url:
            l1 = RedisTier(settings.redis_url, timeout_s=settings.redis_timeout_s, ttl_s=settings.cache_ttl_s)
        self.l1 = l1

    key = staticmethod(cache_key)

    async def get(self, key: str) -> tuple[bytes | None, str | None]:
        """The value and the tier that answered ("l2" in-process, "l1" Redis), or (None, None)."""
        if self.l2.enabled:
            value = self.l2.get(key)
            telemetry.record_cache("l2", value is not None)
            if value is not None:
                return value, "l2"
        if self.l1 is not None:
            value = await self.l1.get(key)
            telemetry.record_cache("l1", value is not None)
            if value is not None:
                self.l2.put(key, value)
                return value, "l1"
        return None, None

    async def set(self, key: str, value: bytes) -> None:
        self.l2.put(key, value)
        if self.l1 is not None:
            await self.l1.set(key, value)

    def status(self) -> dict[str, ComponentHealth]:
        """The health of each tier, keyed "l2" (in-process) and "l1" (Redis)."""
        l1 = (
            self.l1.status()
            if self.l1 is not None
            else ComponentHealth(
                name="cache l1",
                backend="redis",
                enabled=False,
                details={"enabled": False, "note": "no redis_url set"},
            )
        )
        return {"l2": self.l2.status(), "l1": l1}

    async def aclose(self) -> None:
        if self.l1 is not None:
            await self.l1.aclose()
