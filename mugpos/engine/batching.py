"""Dynamic micro-batching: concurrent requests share one forward pass.

A model call costs much the same for one input as for several, so requests that arrive close
together are gathered into one batch. The first waiting item starts a timer of `max_wait_ms`; the
batch goes when it holds `max_size` items or the timer runs out. The model runs in ONE dedicated
thread (models are not thread-safe, and the event loop must stay free), and while it runs new items
queue up, so under load batches grow by themselves. A batch that raises is re-run item by item so
only the failing input fails.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mugpos import telemetry
from mugpos.errors import ModelError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Entry(Generic[T, R]):
    item: T
    fut: asyncio.Future[R]
    t: float  # loop time of arrival
    key: Hashable = None
    gap: float = 0.0  # seconds since the previous arrival: sparse traffic is not worth waiting for


def shape_key(item: Any) -> Hashable:
    """Batch key for image arrays: Ultralytics pads a batch of mixed shapes to a square, which costs
    more than it saves, so only same-shape images should share a forward pass."""
    return getattr(item, "shape", None)


@dataclass(slots=True)
class _Stats:
    batches: int = 0
    items: int = 0
    failed_items: int = 0
    fallback_batches: int = 0
    max_batch: int = 0
    busy_s: float = 0.0
    wait_s: float = 0.0  # summed time items spent queued before dispatch
    sizes: dict[int, int] = field(default_factory=dict)

    def report(self, **shape: Any) -> dict[str, Any]:
        """The counters as `stats()` reports them (one shape for every dispatcher: the status
        resource, the dashboard and the bench read it); `shape` adds the dispatcher's own keys."""
        return {
            **shape,
            "batches": self.batches,
            "items": self.items,
            "failed_items": self.failed_items,
            "fallback_batches": self.fallback_batches,
            "mean_batch": (self.items / self.batches) if self.batches else 0.0,
            "max_batch": self.max_batch,
            "batch_sizes": dict(sorted(self.sizes.items())),
            "busy_s": round(self.busy_s, 6),
            "mean_queue_ms": (self.wait_s / self.items * 1000.0) if self.items else 0.0,
        }


class MicroBatcher(Generic[T, R]):
    """Gather concurrent `submit` calls into batches for `fn(list[T]) -> list[R]`.

    `fn` must return one result per input, in order. `enabled=False` runs every item alone through
    the same worker thread (the "batcher off" baseline). With `key`, a batch holds only items of the
    oldest waiting item's key (e.g. `shape_key`); the others wait for the next batch, oldest first. The batcher binds to the running event loop
    on first use; once idle it may be reused from a new loop (e.g. a later `asyncio.run`).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        *,
        max_size: int,
        max_wait_ms: float,
        name: str,
        enabled: bool = True,
        key: Callable[[T], Hashable] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.fn = fn
        self.key = key
        self.name = name
        self.enabled = enabled
        self.max_size = max_size if enabled else 1
        self.max_wait_s = max_wait_ms / 1000.0 if enabled else 0.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mugpos-{name}")
        self._stats = _Stats()
        self._lock = threading.Lock()  # guards _stats, written from the worker thread
        self._pending: list[_Entry[T, R]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight = 0
        self._closed = False
        self._last_arrival = float("-inf")

    # --- public ---------------------------------------------------------------------------
    async def submit(self, item: T) -> R:
        """One result for one item; it rides in whatever batch forms around it."""
        (fut,) = self._enqueue([item])
        return await fut

    async def submit_many(self, items: list[T]) -> list[R]:
        """Results for several items, in order; they join batches together (and with others).

        If any item fails, the first failure is raised once all have finished.
        """
        if not items:
            return []
        futs = self._enqueue(list(items))
        try:
            await asyncio.wait(futs)
        except asyncio.CancelledError:
            for f in futs:
                f.cancel()
            raise
        errors = [f.exception() for f in futs]  # retrieve every one: no "never retrieved" noise
        for err in errors:
            if err is not None:
                raise err
        return [f.result() for f in futs]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.report(
                name=self.name,
                enabled=self.enabled,
                max_size=self.max_size,
                max_wait_ms=self.max_wait_s * 1000.0,
                queue_depth=sum(1 for e in self._pending if not e.fut.done()),
                inflight=self._inflight,
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    async def aclose(self) -> None:
        """Finish what is queued, then stop the worker; later submits fail with `engine_closed`."""
        self._closed = True
        same_loop = self._loop is asyncio.get_running_loop()
        if self._wakeup is not None and same_loop:
            self._wakeup.set()
        task = self._task
        if task is not None and not task.done() and same_loop:
            await task
        self._task = None
        self._executor.shutdown(wait=False, cancel_futures=False)

    # --- internals ------------------------------------------------------------------------
    def _enqueue(self, items: list[T]) -> list[asyncio.Future[R]]:
        if self._closed:
            raise ModelError(
                f"the {self.name} batcher is closed",
                code="engine_closed",
                hint="the engine is shutting down; retry against a running server",
            )
        loop = self._bind()
        assert self._wakeup is not None
        now = loop.time()
        was_empty = not self._pending
        futs: list[asyncio.Future[R]] = []
        gap, self._last_arrival = now - self._last_arrival, now
        for item in items:
            fut: asyncio.Future[R] = loop.create_future()
            entry: _Entry[T, R] = _Entry(item, fut, now, gap=gap)
            gap = 0.0
            if self.key is not None:
                try:
                    entry.key = self.key(item)
                except Exception:  # an odd item rides alone; `fn` will say what is wrong with it
                    entry.key = ("unkeyable", id(entry))
            self._pending.append(entry)
            futs.append(fut)
        if was_empty or len(self._pending) >= self.max_size or not self.enabled:
            self._wakeup.set()
        return futs

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            busy = self._pending or self._inflight
            if self._loop is not None and not self._loop.is_closed() and busy:
                raise RuntimeError(f"batcher {self.name!r} is busy on another event loop")
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._task = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch_loop(), name=f"mugpos-batcher-{self.name}")
        return loop

    def _live(self) -> int:
        self._pending = [e for e in self._pending if not e.fut.cancelled()]
        return len(self._pending)

    def _ready_count(self) -> int:
        """How many items the next batch would hold now (the oldest item's key group)."""
        n = self._live()
        if self.key is None or not n:
            return n
        k = self._pending[0].key
        return sum(1 for e in self._pending if e.key == k)

    def _take_batch(self) -> list[_Entry[T, R]]:
        if self.key is None:
            batch = self._pending[: self.max_size]
            del self._pending[: self.max_size]
            return batch
        k = self._pending[0].key
        batch, rest = [], []
        for e in self._pending:
            (batch if len(batch) < self.max_size and e.key == k else rest).append(e)
        self._pending = rest
        return batch

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup
        assert wakeup is not None
        try:
            while True:
                while not self._live():
                    if self._closed:
                        return
                    wakeup.clear()
                    await wakeup.wait()
                first = self._pending[0]
                # A lone item after a quiet spell goes at once: nobody is arriving to share with it,
                # and on a fast GPU the wait would cost more than the forward pass.
                lone = self._live() == 1 and first.gap > self.max_wait_s
                deadline = first.t + (0.0 if lone else self.max_wait_s)
                while self._ready_count() < self.max_size and not self._closed:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    wakeup.clear()
                    try:
                        await asyncio.wait_for(wakeup.wait(), remaining)
                    except TimeoutError:
                        break
                if not self._live():
                    continue
                await self._run_batch(loop, self._take_batch())
        except asyncio.CancelledError:
            self._fail_pending(ModelError(f"the {self.name} batcher stopped", code="engine_closed"))
            raise
        except Exception as exc:  # a bug here must not leave callers hanging forever
            self._fail_pending(exc)
            raise

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry[T, R]]) -> None:
        now = loop.time()
        queued = sum(now - e.t for e in batch)
        self._inflight = len(batch)
        try:
            outcomes = await loop.run_in_executor(self._executor, self._call, [e.item for e in batch])
        except BaseException as exc:  # executor shut down under us, or the loop is going away
            for e in batch:
                if not e.fut.done():
                    e.fut.set_exception(exc if isinstance(exc, Exception) else ModelError(str(exc)))
            raise
        finally:
            self._inflight = 0
        with self._lock:
            self._stats.wait_s += queued
        for e, (ok, value) in zip(batch, outcomes, strict=True):
            if e.fut.done():  # the caller gave up: drop the result
                continue
            if ok:
                e.fut.set_result(value)
            else:
                e.fut.set_exception(value)

    def _call(self, items: list[T]) -> list[tuple[bool, Any]]:
        """Worker thread: the batch in one call; on failure each item alone."""
        t0 = time.perf_counter()
        fallback = False
        try:
            try:
                results = self._checked(items)
                outcomes: list[tuple[bool, Any]] = [(True, r) for r in results]
            except Exception as batch_exc:
                if len(items) == 1:
                    outcomes = [(False, batch_exc)]
                else:
                    fallback = True
                    outcomes = []
                    for item in items:
                        try:
                            outcomes.append((True, self._checked([item])[0]))
                        except Exception as exc:
                            outcomes.append((False, exc))
        finally:
            busy = time.perf_counter() - t0
        with self._lock:
            s = self._stats
            s.batches += 1
            s.items += len(items)
            s.failed_items += sum(1 for ok, _ in outcomes if not ok)
            s.fallback_batches += int(fallback)
            s.max_batch = max(s.max_batch, len(items))
            s.sizes[len(items)] = s.sizes.get(len(items), 0) + 1
            s.busy_s += busy
        telemetry.record_batch(self.name, len(items))
        return outcomes

    def _checked(self, items: list[T]) -> list[R]:
        results = self.fn(items)
        try:
            n = len(results)  # a list, or an array with one row per input
        except TypeError:
            n = -1
        if n != len(items):
            got = n if n >= 0 else type(results).__name__
            raise ModelError(f"{self.name}: the model returned {got} results for {len(items)} inputs")
        return list(results)

    def _fail_pending(self, exc: BaseException) -> None:
        for e in self._pending:
            if not e.fut.done():
                e.fut.set_exception(exc)
        self._pending.clear()


class LaneDispatcher(Generic[T, R]):
    """For a model that cannot batch (a batch-1 export on the CPU): each item runs as soon as one of
    `lanes` worker threads is free, and its result goes back at once.

    A MicroBatcher in front of such a model gains nothing (the batch runs picture by picture anyway)
    and costs overlap: it hands a batch's results back only when its last picture is done, so the
    pictures finished first wait with their next stages (geometry, drawing, the answer), and then
    all of them crowd the interpreter lock together while the model idles. Here a finished picture
    goes on while the others are still in the model. Same interface as `MicroBatcher`."""

    def __init__(self, fn: Callable[[list[T]], list[R]], *, lanes: int, name: str) -> None:
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        self.fn = fn
        self.name = name
        self.lanes = lanes
        self._executor = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix=f"mugpos-{name}-lane")
        self._stats = _Stats()
        self._lock = threading.Lock()
        self._queued = 0
        self._inflight = 0
        self._closed = False

    async def submit(self, item: T) -> R:
        if self._closed:
            raise ModelError(
                f"the {self.name} lanes are closed",
                code="engine_closed",
                hint="the engine is shutting down; retry against a running server",
            )
        loop = asyncio.get_running_loop()
        arrived = time.perf_counter()
        self._queued += 1
        try:
            return await loop.run_in_executor(self._executor, self._call, item, arrived)
        finally:
            self._queued -= 1

    async def submit_many(self, items: list[T]) -> list[R]:
        """Results for several items, in order (each on its own lane); the first failure is raised
        once all have finished."""
        results = await asyncio.gather(*(self.submit(i) for i in items), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return list(results)  # type: ignore[arg-type]

    def _call(self, item: T, arrived: float) -> R:
        t0 = time.perf_counter()
        with self._lock:
            self._inflight += 1
        ok = False
        try:
            results = self.fn([item])
            if len(results) != 1:
                raise ModelError(f"{self.name}: the model returned {len(results)} results for 1 input")
            ok = True
            return results[0]
        finally:
            busy = time.perf_counter() - t0
            with self._lock:
                self._inflight -= 1
                s = self._stats
                s.batches += 1
                s.items += 1
                s.failed_items += int(not ok)
                s.max_batch = 1
                s.sizes[1] = s.sizes.get(1, 0) + 1
                s.busy_s += busy
                s.wait_s += t0 - arrived
            telemetry.record_batch(self.name, 1)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.report(
                name=self.name,
                enabled=True,
                lanes=self.lanes,
                max_size=1,
                max_wait_ms=0.0,
                queue_depth=max(self._queued - self._inflight, 0),
                inflight=self._inflight,
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    async def aclose(self) -> None:
        """Let running items finish; later submits fail with `engine_closed`."""
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
