"""CPU stages in their own processes: the plane fit, rules and the move solver off this interpreter.

Measuring a desk is pure Python and numpy over small arrays (tens of ms for a lone cup, seconds for
a 40-object table) and holds the interpreter lock nearly all the time. Run in a thread, it stalls
everything else a server does meanwhile: the next request's decoding, the model's dispatch, the
answers going out; with 16 requests at once the model idles while fits queue on the lock. In a
worker process it runs on another core while this process keeps the model busy, and the imports it
needs (scipy.optimize, ~0.6-1 s) happen there, beside the server's own start, not before its first
answer.

`CpuStages.run(fn, *args)` runs a module-level function with picklable arguments (pydantic models,
numpy arrays, the measured `Desk`) in a worker and returns its result. With `processes=0` (or where a
worker cannot start or dies) the same call runs in a thread here: the answer is the same, only where
it was computed differs. Workers are spawned (never forked from a process with model threads) and
write nothing to stdout, which is the MCP stdio transport's channel.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("mugpos.engine")

R = TypeVar("R")

_LIVE: weakref.WeakSet[CpuStages] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Stop the workers of any CpuStages nobody closed, while the interpreter can still do it
    cleanly (a pool left to the garbage collector at shutdown complains on stderr)."""
    for stages in list(_LIVE):
        stages.close()


def default_processes() -> int:
    """One worker on a machine with cores to spare (the model keeps the others), none on one core,
    where a second process would only add copying."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores >= 2 else 0


def _child_init() -> None:
    """In each worker: stdout is the stdio transport's channel in the server, so anything a library
    prints here goes to stderr instead; and a worker never outlives its server (killed, crashed):
    a pool's workers only notice that when handed work, so a thread waits on the parent's sentinel."""
    os.dup2(2, 1)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with, args=(parent.sentinel,), name="mugpos-cpu-parent", daemon=True
        ).start()


def _exit_with(sentinel: int) -> None:
    from multiprocessing.connection import wait

    wait([sentinel])  # ready once the parent process is gone
    os._exit(0)


def _warm(warmers: tuple[Callable[[], object], ...]) -> int:
    """Run each warmer (module-level functions that import what the stages need and rehearse them
    once) in a worker, so the first real call is fast."""
    for warm in warmers:
        warm()
    return os.getpid()


class CpuStages:
    """A small pool of spawned worker processes for the CPU stages, with threads as the fallback."""

    def __init__(
        self, processes: int | None = None, *, warmers: tuple[Callable[[], object], ...] = ()
    ) -> None:
        self.processes = default_processes() if processes is None else max(0, processes)
        # What a worker runs once it is up; the layers above add theirs (`add_warmer`) before start.
        self.warmers: tuple[Callable[[], object], ...] = warmers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()  # re-entered when a warm-up fails at once (its callback runs here)
        self._warm: Any = None  # the warm-up job's future
        self.calls = 0
        self.in_thread = 0  # calls that ran here (no workers, or a worker failed)
        self.restarts = 0
        self.busy_s = 0.0
        self.last_error: str | None = None
        _LIVE.add(self)

    def start(self) -> None:
        """Spawn the workers and warm them (idempotent, returns at once: the spawn and the imports
        go on in the workers while the caller loads its models)."""
        with self._lock:
            if self.processes == 0 or self._pool is not None:
                return
            try:
                pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_init,
                )
                warm = pool.submit(_warm, self.warmers)
                # Published together: whoever sees the pool also sees its warm-up (`wait_warm`).
                self._warm, self._pool = warm, pool
                warm.add_done_callback(self._warmed)
            except Exception as exc:  # no processes here (a sandbox, a frozen app): threads do
                self._pool = None
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.processes = 0
                log.warning("CPU stages run in threads: worker processes unavailable (%s)", exc)

    def _warmed(self, future: Any) -> None:
        """A worker that cannot start or warm (no interpreter to spawn, an import failing there)
        leaves the stages in threads for good, and says why in the status."""
        exc = future.exception()
        if exc is None:
            return
        with self._lock:
            if future is not self._warm:
                return  # an earlier pool's warm-up (it was replaced meanwhile)
            pool, self._pool = self._pool, None
            self.processes = 0
            self.last_error = f"worker process failed to start: {type(exc).__name__}: {exc}"
        log.warning("CPU stages run in threads: %s", self.last_error)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def add_warmer(self, warm: Callable[[], object]) -> None:
        """Also run `warm` (a module-level function) in each worker as it starts."""
        if warm not in self.warmers:
            self.warmers = (*self.warmers, warm)

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """`fn(*args, **kwargs)` in a worker process (a thread here when there is none)."""
        self.calls += 1
        t0 = time.perf_counter()
        try:
            pool = self._pool if self.warm else None
            if pool is None:  # no worker, or one still starting: never queue behind its imports
                self.in_thread += 1
                return await asyncio.to_thread(fn, *args, **kwargs)
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))
            except BrokenProcessPool as exc:
                # A worker died (killed, out of memory): this call runs here, the pool starts anew.
                self._restart(pool, exc)
                self.in_thread += 1
                return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _restart(self, broken: ProcessPoolExecutor, exc: BaseException) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another call restarted it already
            self.last_error = f"worker process lost: {exc}"
            log.warning("a CPU-stage worker process died (%s); starting a new one", exc)
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.restarts += 1
        self.start()

    @property
    def warm(self) -> bool:
        """The workers are up and warmed (until then calls run in threads here)."""
        w = self._warm
        return self._pool is not None and w is not None and w.done() and w.exception() is None

    async def wait_warm(self, timeout: float = 60.0) -> bool:
        """Wait for the workers to be warm (tests, benchmarks); False if there are none or they
        failed to start (`status()` says why)."""
        w = self._warm
        if self._pool is None or w is None:
            return False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(w), timeout)
        return self.warm

    def status(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "running": self._pool is not None,
            "warm": self.warm,
            "calls": self.calls,
            "in_thread": self.in_thread,
            "restarts": self.restarts,
            "busy_s": round(self.busy_s, 3),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
