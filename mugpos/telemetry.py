"""What the operator sees, recorded in one place: Prometheus metrics and a feed of recent events.

Ground level (imports nothing from mugpos), so any layer may record into it: the cache counts hits
per tier, the batcher its batch sizes, the operations each analysis's stage timings and an event per
analysis or suggestion (whichever door asked: MCP, A2A, the worker), the MCP door its tool calls.
The HTTP door reads it back: `/metrics` renders the registry, `/dashboard` follows the feed.

Multi-process: when `PROMETHEUS_MULTIPROC_DIR` is set before this module is imported (the
prometheus-client convention for servers that fork workers), counters and histograms are kept in
per-process files that `/metrics` sums; gauges say how to combine workers (`multiprocess_mode`).

The feed costs nothing measurable when no one watches: `publish` appends a reference to a short
ring and returns; only a connected dashboard turns events into JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _mp

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

# --- metrics (names and labels are the outside contract: docs/operations.md "Metrics") ------------

STAGES = ("load", "decode", "detect", "embed", "geometry", "rules", "annotate", "store", "total")

TOOL_CALLS = Counter(
    "mugpos_tool_calls", "Tool calls by tool and outcome (ok, refused, error).", ["tool", "outcome"]
)
ERRORS = Counter("mugpos_errors", "Refused or failed calls by error code ('internal' for crashes).", ["code"])
TOOL_SECONDS = Histogram(
    "mugpos_tool_seconds",
    "Wall time of a tool call, from arguments to result.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STAGE_SECONDS = Histogram(
    "mugpos_stage_seconds",
    "Time per pipeline stage of one analysis (stage=total is the whole analysis).",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_HITS = Counter(
    "mugpos_cache_hits", "Cache lookups answered, by tier (l2 in-process, l1 Redis).", ["tier"]
)
CACHE_MISSES = Counter("mugpos_cache_misses", "Cache lookups not answered, by tier.", ["tier"])
BATCH_SIZE = Histogram(
    "mugpos_batch_size",
    "Inputs per model call of the micro-batcher, by model.",
    ["model"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
)
QUEUE_DEPTH = Gauge(
    "mugpos_queue_depth", "Inputs waiting for a model, by model.", ["model"], multiprocess_mode="livesum"
)
MODELS_READY = Gauge(
    "mugpos_models_ready",
    "1 when the models are loaded and warm (every live worker).",
    multiprocess_mode="livemin",
)
MODEL_LOAD_SECONDS = Gauge(
    "mugpos_model_load_seconds",
    "Seconds the last load of each model took.",
    ["model"],
    multiprocess_mode="livemax",
)
CACHE_BYTES = Gauge(
    "mugpos_cache_bytes",
    "Bytes held by the in-process cache tier (l2).",
    ["tier"],
    multiprocess_mode="livesum",
)
CACHE_MAX_BYTES = Gauge(
    "mugpos_cache_max_bytes", "Budget of the in-process cache tier.", ["tier"], multiprocess_mode="livesum"
)
BACKEND_UP = Gauge(
    "mugpos_backend_up",
    "1 when a configured backend (redis, mongodb) answers, 0 when it does not.",
    ["backend"],
    multiprocess_mode="livemin",
)
GPU_MEMORY_BYTES = Gauge(
    "mugpos_gpu_memory_bytes",
    "CUDA memory (kind: allocated, reserved by torch; used, total on the device).",
    ["device", "kind"],
    multiprocess_mode="livemax",
)
GPU_UTILIZATION = Gauge(
    "mugpos_gpu_utilization_ratio", "CUDA device utilisation, 0-1.", ["device"], multiprocess_mode="livemax"
)
IDLE_SECONDS_LEFT = Gauge(
    "mugpos_idle_shutdown_seconds_left",
    "Seconds until the idle watchdog stops this pod (absent where no watchdog runs).",
    ["pod"],
    multiprocess_mode="livemin",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def render() -> bytes:
    """The Prometheus text exposition of every mugpos metric (summed over workers when forked)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        _mp.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def mark_process_dead(pid: int) -> None:
    """Call from a forking server's child-exit hook so live* gauges forget the worker."""
    if multiprocess_dir():
        _mp.mark_process_dead(pid)


# --- recording helpers (each a few microseconds) ------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _child(metric: Any, *values: str) -> Any:
    """A labelled child, resolved once (`.labels()` takes a lock and builds a tuple every time)."""
    return metric.labels(*values)


def record_call(tool: str, outcome: str, seconds: float, code: str | None = None) -> None:
    _child(TOOL_CALLS, tool, outcome).inc()
    _child(TOOL_SECONDS, tool).observe(seconds)
    if code is not None:
        _child(ERRORS, code).inc()


def record_timings(timings: Any) -> None:
    """Observe one analysis's `Timings` (milliseconds per stage; stages that did not run are 0)."""
    for stage in STAGES:
        ms = getattr(timings, f"{stage}_ms", 0.0) or 0.0
        if ms > 0:
            _child(STAGE_SECONDS, stage).observe(ms / 1000.0)


def record_analysis(result: Any, picture: Any) -> None:
    """After an analysis (any door): its stage timings, and an event for the dashboard.

    The event holds the result model and the picture by reference: no copy, no JSON.
    """
    record_timings(result.timings)
    publish("analysis", {"result": result, "picture": picture})


def record_suggestion(result: Any, picture: Any) -> None:
    publish("suggestion", {"result": result, "picture": picture})


def record_cache(tier: str, hit: bool) -> None:
    _child(CACHE_HITS if hit else CACHE_MISSES, tier).inc()


def record_batch(model: str, size: int) -> None:
    _child(BATCH_SIZE, model).observe(size)


# --- the event feed -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something a watcher may want to see: `data` is the result model itself, serialised lazily."""

    seq: int
    kind: str  # "analysis", "suggestion", "error", ...
    at: float
    data: Any


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event]


@dataclass
class EventFeed:
    """A short ring of recent events plus live subscribers; thread-safe, loop-aware."""

    keep: int = 30
    closing: bool = False  # set when the server stops: open streams end instead of holding it up
    _ring: deque[Event] = field(default_factory=deque)
    _subs: list[_Subscriber] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    def publish(self, kind: str, data: Any) -> None:
        with self._lock:
            self._seq += 1
            event = Event(self._seq, kind, time.time(), data)
            self._ring.append(event)
            while len(self._ring) > self.keep:
                self._ring.popleft()
            subs = list(self._subs)
        for sub in subs:  # empty when no one watches: the whole cost is the append above
            _deliver(sub, event)

    def recent(self, kind: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self._ring if kind is None or e.kind == kind]

    @property
    def watchers(self) -> int:
        return len(self._subs)

    @contextlib.contextmanager
    def subscribe(self, maxsize: int = 100) -> Iterator[asyncio.Queue[Event]]:
        """A queue of events from now on, for as long as the `with` lasts (call inside a loop)."""
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(maxsize))
        with self._lock:
            self._subs.append(sub)
        try:
            yield sub.queue
        finally:
            with self._lock:
                self._subs.remove(sub)


def _deliver(sub: _Subscriber, event: Event) -> None:
    def put() -> None:
        if sub.queue.full():  # a slow watcher loses the oldest, never blocks the work
            with contextlib.suppress(asyncio.QueueEmpty):
                sub.queue.get_nowait()
        sub.queue.put_nowait(event)

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is sub.loop:
        put()
    elif not sub.loop.is_closed():
        sub.loop.call_soon_threadsafe(put)


FEED = EventFeed()


def publish(kind: str, data: Any) -> None:
    FEED.publish(kind, data)
