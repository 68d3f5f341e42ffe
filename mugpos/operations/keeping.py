"""Storage behind the answer: journal first (fsynced), answer, then write the stores.

Writing the layout record, the annotated picture and the thumbnail took a tenth of an analysis on
the critical path. `Keeper.keep` only appends the analysis to the write-ahead journal
(`mugpos.stores.journal`, group-committed, so concurrent calls share fsyncs) and returns; a
background task writes the stores and marks the entry done. Until then the analysis is served from
memory (read-your-writes: `recent`), and `drain` lets search wait for writes in flight. A process
killed in between leaves the entry pending in its journal; the next process replays it before it
reads any stored analysis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mugpos.stores.health import ComponentHealth
from mugpos.stores.journal import Entry, Journal

log = logging.getLogger("mugpos.keeping")

Apply = Callable[[Entry, Any], Awaitable[None]]
RETRY_DELAYS_S = (0.2, 1.0, 5.0, 30.0)


class Keeper:
    def __init__(self, journal: Journal, apply: Apply) -> None:
        self.journal = journal
        self._apply_fn = apply
        self._recent: dict[str, tuple[Entry, Any]] = {}
        self._parts: dict[str, tuple[bytes, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed = 0
        self.last_error: str | None = None

    async def keep(self, entry: Entry, record: Any, extra: Any = None) -> None:
        """Durable once this returns; the stores follow in the background. `record` is what reads
        of `entry.id` get meanwhile; `extra` is in-memory help for the writer (the decoded photo for
        the thumbnail), never needed for a replay. A cancelled call does not cancel the keeping: an
        entry once appended is always written on (never left pending in a live process's journal)."""
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._keep(entry, record, extra, durable), name=f"keep-{entry.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(durable)

    async def _keep(self, entry: Entry, record: Any, extra: Any, durable: asyncio.Future[None]) -> None:
        try:
            await self.journal.append(entry)
        except Exception as exc:
            if not durable.done():
                durable.set_exception(exc)
            return
        self._recent[entry.id] = (entry, record)
        mimes = entry.header.get("mimes") or {}
        for key, data in entry.parts.items():
            if key in mimes:
                self._parts[key] = (data, mimes[key])
        if not durable.done():
            durable.set_result(None)
        await self._write(entry, extra)

    async def _write(self, entry: Entry, extra: Any) -> None:
        for delay in (*RETRY_DELAYS_S, None):
            try:
                await self._apply_fn(entry, extra)
                break
            except Exception as exc:  # the journal keeps it; a later try or the next start applies it
                self.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                if delay is None:
                    self.failed += 1
                    log.error(
                        "storing %s failed for good (kept in the journal): %s", entry.id, self.last_error
                    )
                    return
                log.warning("storing %s failed, retrying in %.1f s: %s", entry.id, delay, self.last_error)
                await asyncio.sleep(delay)
        await asyncio.to_thread(self.journal.done, entry.id)
        self._recent.pop(entry.id, None)
        for key in entry.parts:
            self._parts.pop(key, None)

    def recent(self, entry_id: str) -> Any:
        """The record of an entry journalled by this process whose stores may not be written yet."""
        found = self._recent.get(entry_id)
        return None if found is None else found[1]

    def recent_part(self, key: str) -> tuple[bytes, str] | None:
        """A journalled picture (bytes, mime) whose blob may not be written yet."""
        return self._parts.get(key)

    async def drain(self) -> None:
        """Wait for every write in flight (search, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def replay(self) -> int:
        """Apply what dead processes journalled but never stored; returns how many entries."""
        n = 0
        for path, entries in await asyncio.to_thread(self.journal.orphans):
            try:
                for entry in entries:
                    await self._apply_fn(entry, None)
                    n += 1
            except Exception as exc:  # the stores are down: the file stays for the next start
                self.last_error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                log.warning("replaying %s failed: %s", path.name, self.last_error)
                continue
            await asyncio.to_thread(self.journal.forget, path)
        if n:
            log.info("replayed %d journalled analyses into the stores", n)
        return n

    def status(self) -> ComponentHealth:
        """The journal's health; degraded once an analysis could not be stored and waits in it."""
        health = self.journal.status()
        health.details.update(writing=len(self._tasks), failed=self.failed, last_error=self.last_error)
        if self.failed:
            health.degraded = True
            health.reason = f"{self.failed} analyses kept only in the journal: {self.last_error}"
        return health

    async def aclose(self) -> None:
        await self.drain()
        await asyncio.to_thread(self.journal.close)


async def open_keeper(settings: Any, apply: Apply) -> Keeper:
    """This process's journal under the data directory; what dead processes left is applied first."""
    journal = await asyncio.to_thread(Journal, Path(settings.data_dir) / "journal")
    keeper = Keeper(journal, apply)
    await keeper.replay()
    return keeper
