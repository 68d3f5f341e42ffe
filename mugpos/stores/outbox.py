"""The webhook outbox: deliveries waiting to be POSTed, kept until the receiver says 2xx.

Durable so that nothing is lost when a receiver is down or mugpos restarts: SQLite under the data
dir by default (one file, WAL, safe for several processes), Redis when configured (several pods
sharing one queue). A sender *claims* due deliveries: the claim moves their due time a lease ahead
and counts the attempt, so two senders never post the same delivery at once, and a sender that dies
mid-post leaves the delivery to be retried when the lease runs out (at-least-once; receivers
deduplicate by the event id every delivery carries).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from mugpos.errors import BackendError
from mugpos.stores.cache import redact_url
from mugpos.stores.health import ComponentHealth

if TYPE_CHECKING:
    from mugpos.settings import Settings

DeliveryStatus = Literal["pending", "sent", "dead"]


class Delivery(BaseModel):
    """One event bound for one URL: `body` is the exact JSON that is signed and sent every time."""

    id: str
    event_id: str
    event_type: str
    url: str
    body: str
    attempts: int = 0
    next_at: float = Field(default_factory=time.time)
    status: DeliveryStatus = "pending"
    last_error: str | None = None
    created_at: float = Field(default_factory=time.time)
    sent_at: float | None = None


class Outbox(Protocol):
    async def add(self, deliveries: list[Delivery]) -> None: ...
    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Delivery]: ...
    async def mark_sent(self, delivery_id: str, now: float) -> None: ...
    async def mark_retry(self, delivery_id: str, next_at: float, error: str) -> None: ...
    async def mark_dead(self, delivery_id: str, error: str) -> None: ...
    async def get(self, delivery_id: str) -> Delivery | None: ...
    async def next_due(self) -> float | None: ...
    async def counts(self) -> dict[str, int]: ...
    async def prune(self, sent_before: float) -> int: ...
    def status(self) -> ComponentHealth: ...
    async def aclose(self) -> None: ...


_COLUMNS = "id, event_id, event_type, url, body, attempts, next_at, status, last_error, created_at, sent_at"


class SqliteOutbox:
    """Deliveries in one SQLite file. Each call runs in a worker thread on its own connection."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event_id TEXT NOT NULL,"
                " event_type TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,"
                " attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, status TEXT NOT NULL,"
                " last_error TEXT, created_at REAL NOT NULL, sent_at REAL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            try:
                return await asyncio.to_thread(fn, *args)
            except sqlite3.Error as exc:
                raise BackendError(
                    f"webhook outbox {self.path}: {exc}", hint="check the data dir is writable"
                ) from None

    async def add(self, deliveries: list[Delivery]) -> None:
        def write() -> None:
            with self._connect() as db:
                db.executemany(
                    f"INSERT OR IGNORE INTO deliveries ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [_row(d) for d in deliveries],
                )

        await self._run(write)

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        def claim() -> list[Delivery]:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")  # one claimer at a time, across processes too
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM deliveries WHERE status='pending' AND next_at<=?"
                    " ORDER BY next_at LIMIT ?",
                    (now, limit),
                ).fetchall()
                ids = [r["id"] for r in rows]
                db.executemany(
                    "UPDATE deliveries SET next_at=?, attempts=attempts+1 WHERE id=?",
                    [(now + lease_s, i) for i in ids],
                )
                db.execute("COMMIT")
            return [
                Delivery.model_validate(dict(r) | {"attempts": r["attempts"] + 1, "next_at": now + lease_s})
                for r in rows
            ]

        return await self._run(claim)

    async def _update(self, sql: str, args: tuple[Any, ...]) -> None:
        def write() -> None:
            with self._connect() as db:
                db.execute(sql, args)

        await self._run(write)

    async def mark_sent(self, delivery_id: str, now: float) -> None:
        await self._update(
            "UPDATE deliveries SET status='sent', sent_at=?, last_error=NULL WHERE id=?", (now, delivery_id)
        )

    async def mark_retry(self, delivery_id: str, next_at: float, error: str) -> None:
        await self._update(
            "UPDATE deliveries SET next_at=?, last_error=? WHERE id=? AND status='pending'",
            (next_at, error[:500], delivery_id),
        )

    async def mark_dead(self, delivery_id: str, error: str) -> None:
        await self._update(
            "UPDATE deliveries SET status='dead', last_error=? WHERE id=?", (error[:500], delivery_id)
        )

    async def get(self, delivery_id: str) -> Delivery | None:
        def read() -> Delivery | None:
            with self._connect() as db:
                row = db.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
            return Delivery.model_validate(dict(row)) if row else None

        return await self._run(read)

    async def next_due(self) -> float | None:
        def read() -> float | None:
            with self._connect() as db:
                row = db.execute("SELECT MIN(next_at) FROM deliveries WHERE status='pending'").fetchone()
            return row[0]

        return await self._run(read)

    async def counts(self) -> dict[str, int]:
        def read() -> dict[str, int]:
            with self._connect() as db:
                rows = db.execute(
                    "SELECT status, COUNT(*), SUM(attempts), SUM(MAX(attempts-1, 0)) FROM deliveries"
                    " GROUP BY status"
                ).fetchall()
            out = {"pending": 0, "sent": 0, "dead": 0, "attempts": 0, "retries": 0}
            for status, n, attempts, retries in rows:
                out[status] = n
                out["attempts"] += attempts or 0
                out["retries"] += retries or 0
            return out

        return await self._run(read)

    async def prune(self, sent_before: float) -> int:
        """Forget deliveries sent before `sent_before` (dead ones stay until someone looks)."""

        def delete() -> int:
            with self._connect() as db:
                return db.execute(
                    "DELETE FROM deliveries WHERE status='sent' AND sent_at < ?", (sent_before,)
                ).rowcount

        return await self._run(delete)

    def status(self) -> ComponentHealth:
        return ComponentHealth(name="outbox", backend="sqlite", details={"path": str(self.path)})

    async def aclose(self) -> None:
        return None


def _row(d: Delivery) -> tuple[Any, ...]:
    return (d.id, d.event_id, d.event_type, d.url, d.body, d.attempts, d.next_at, d.status,
            d.last_error, d.created_at, d.sent_at)  # fmt: skip


# Claim atomically: the due ids (score <= now), pushed a lease ahead, attempts counted.
_CLAIM_LUA = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  redis.call('HINCRBY', ARGV[4] .. id, 'attempts', 1)
  redis.call('HSET', ARGV[4] .. id, 'next_at', ARGV[3])
end
return ids
"""


class RedisOutbox:
    """Deliveries as Redis hashes plus one sorted set of due times; sent ones expire after `keep_s`."""

    def __init__(self, url: str, prefix: str = "mugpos:outbox:", keep_s: int = 7 * 24 * 3600) -> None:
        import redis.asyncio as aredis

        self.url = url
        self._r = aredis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.keep_s = keep_s
        self._claim = self._r.register_script(_CLAIM_LUA)

    def _k(self, name: str) -> str:
        return self.prefix + name

    async def _call(self, coro: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await coro
        except RedisError as exc:
            raise BackendError(f"webhook outbox (Redis): {exc}", hint="check MUGPOS_REDIS_URL") from None

    async def add(self, deliveries: list[Delivery]) -> None:
        async def write() -> None:
            for d in deliveries:
                key = self._k("d:" + d.id)
                if await self._r.hsetnx(key, "id", d.id):  # the same delivery twice is one delivery
                    await self._r.hset(key, mapping=_redis_fields(d))
                    await self._r.zadd(self._k("due"), {d.id: d.next_at})

        await self._call(write())

    async def claim_due(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        ids = await self._call(
            self._claim(keys=[self._k("due")], args=[now, limit, now + lease_s, self._k("d:")])
        )
        out = [await self.get(i) for i in ids]
        return [d for d in out if d is not None]

    async def mark_sent(self, delivery_id: str, now: float) -> None:
        key = self._k("d:" + delivery_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.zrem(self._k("due"), delivery_id)
        pipe.hset(key, mapping={"status": "sent", "sent_at": now, "last_error": ""})
        pipe.expire(key, self.keep_s)
        pipe.hincrby(self._k("stats"), "sent", 1)
        await self._call(self._count_retries(delivery_id, pipe))

    async def _count_retries(self, delivery_id: str, pipe: Any) -> None:
        attempts = int(await self._r.hget(self._k("d:" + delivery_id), "attempts") or 1)
        pipe.hincrby(self._k("stats"), "attempts", attempts)
        pipe.hincrby(self._k("stats"), "retries", max(attempts - 1, 0))
        await pipe.execute()

    async def mark_retry(self, delivery_id: str, next_at: float, error: str) -> None:
        key = self._k("d:" + delivery_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.zadd(self._k("due"), {delivery_id: next_at}, xx=True)
        pipe.hset(key, mapping={"next_at": next_at, "last_error": error[:500]})
        await self._call(pipe.execute())

    async def mark_dead(self, delivery_id: str, error: str) -> None:
        key = self._k("d:" + delivery_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.zrem(self._k("due"), delivery_id)
        pipe.hset(key, mapping={"status": "dead", "last_error": error[:500]})
        pipe.sadd(self._k("dead"), delivery_id)
        pipe.hincrby(self._k("stats"), "dead", 1)
        await self._call(self._count_retries(delivery_id, pipe))

    async def get(self, delivery_id: str) -> Delivery | None:
        raw = await self._call(self._r.hgetall(self._k("d:" + delivery_id)))
        if not raw or "body" not in raw:
            return None
        data: dict[str, Any] = dict(raw)
        for k in ("last_error", "sent_at"):
            if data.get(k) == "":
                data[k] = None
        return Delivery.model_validate(data)

    async def next_due(self) -> float | None:
        first = await self._call(self._r.zrange(self._k("due"), 0, 0, withscores=True))
        return float(first[0][1]) if first else None

    async def counts(self) -> dict[str, int]:
        stats = await self._call(self._r.hgetall(self._k("stats")))
        pending = await self._call(self._r.zcard(self._k("due")))
        return {
            "pending": int(pending),
            "sent": int(stats.get("sent", 0)),
            "dead": int(stats.get("dead", 0)),
            "attempts": int(stats.get("attempts", 0)),
            "retries": int(stats.get("retries", 0)),
        }

    async def prune(self, sent_before: float) -> int:
        return 0  # sent deliveries expire by themselves after `keep_s`

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="outbox", backend="redis", details={"url": redact_url(self.url), "prefix": self.prefix}
        )

    async def aclose(self) -> None:
        await self._r.aclose()


def _redis_fields(d: Delivery) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in json.loads(d.model_dump_json()).items()}


def open_outbox(settings: Settings) -> Outbox:
    """The configured outbox: SQLite under the data dir unless `webhook_outbox=redis`."""
    if settings.webhook_outbox == "redis":
        if not settings.redis_url:
            raise BackendError(
                "MUGPOS_WEBHOOK_OUTBOX=redis but no MUGPOS_REDIS_URL is set",
                hint="set MUGPOS_REDIS_URL=redis://host:6379/0, or use the default sqlite outbox",
            )
        return RedisOutbox(settings.redis_url)
    return SqliteOutbox(settings.data_dir / "webhooks" / "outbox.sqlite")
