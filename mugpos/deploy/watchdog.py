"""The timed pod's idle watchdog: stop the pod after real idleness, never in the middle of a call.

Idleness is counted from tool activity only (calls in flight and the end of the last call), not from
open connections or health checks, so a client that keeps a session open but does nothing still lets
the pod stop. The watchdog warns on stderr `warn_s` before it acts and stops the pod through the
runpod SDK (`runpod.stop_pod`, GraphQL `podStop`), which is what RunPod's own console calls. The clock
and the stop action are injectable so tests run in milliseconds against a recording server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from mugpos.errors import ConfigError
from mugpos.settings import Settings

log = logging.getLogger("mugpos.watchdog")

StopAction = Callable[[], Any]


def runpod_stopper(pod_id: str, api_key: str | None) -> StopAction:
    """A stop action that asks RunPod to stop `pod_id`; the API base URL is `$RUNPOD_API_BASE_URL`."""

    def stop() -> Any:
        import runpod

        if api_key:
            runpod.api_key = api_key
        if not runpod.api_key:
            raise ConfigError(
                "no RunPod API key to stop the pod with",
                hint="RunPod sets RUNPOD_API_KEY in pods; otherwise set MUGPOS_RUNPOD_API_KEY",
            )
        return runpod.stop_pod(pod_id)

    return stop


class IdleWatchdog:
    """Counts tool calls and stops the pod after `idle_s` seconds with none in flight.

    `begin()`/`end()` (or `async with watchdog.track():`) bracket every tool call; `check()` is one
    step of the state machine (the background task started by `start()` calls it every `poll_s`).
    """

    def __init__(
        self,
        idle_s: float,
        stop: StopAction,
        *,
        warn_s: float = 60.0,
        pod_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float | None = None,
        retry_s: float = 30.0,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        if idle_s <= 0:
            raise ConfigError("the idle watchdog needs idle_s > 0", hint="MUGPOS_IDLE_SHUTDOWN_S=600")
        self.idle_s = float(idle_s)
        self.warn_s = min(max(float(warn_s), 0.0), self.idle_s)
        self.pod_id = pod_id
        self._stop_action = stop
        self._clock = clock
        self.poll_s = poll_s if poll_s is not None else max(0.05, min(5.0, self.idle_s / 20))
        self.retry_s = retry_s
        self._announce = announce or _to_stderr
        self._lock = threading.Lock()
        self.in_flight = 0
        self.calls = 0
        self.last_activity = clock()
        self.warned = False
        self.stopped = False
        self.stop_error: str | None = None
        self._next_try = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, env: dict[str, str] | None = None, **kwargs: Any
    ) -> IdleWatchdog | None:
        """The watchdog a pod needs, or None where it does not apply (shutdown off, not on a pod)."""
        env = dict(os.environ) if env is None else env
        pod_id = settings.runpod_pod_id or env.get("RUNPOD_POD_ID")
        if settings.idle_shutdown_s <= 0 or not pod_id:
            return None
        key = settings.runpod_api_key.get_secret_value() if settings.runpod_api_key else None
        key = key or env.get("RUNPOD_API_KEY")
        return cls(
            settings.idle_shutdown_s,
            runpod_stopper(pod_id, key),
            warn_s=settings.idle_warn_s,
            pod_id=pod_id,
            **kwargs,
        )

    # --- activity -------------------------------------------------------------------------
    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.calls += 1
            self.last_activity = self._clock()
            if self.warned:
                self.warned = False
                self._announce("mugpos: activity resumed; idle shutdown cancelled")

    def end(self) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            self.last_activity = self._clock()

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self.in_flight else max(0.0, self._clock() - self.last_activity)

    # --- the state machine ------------------------------------------------------------------
    def check(self) -> str:
        """One step: 'busy', 'idle', 'warned', 'stopped' or 'retrying' (the stop request failed)."""
        if self.stopped:
            return "stopped"
        with self._lock:
            if self.in_flight:
                return "busy"
            now = self._clock()
            idle = now - self.last_activity
            if idle < self.idle_s - self.warn_s:
                return "idle"
            if not self.warned:
                self.warned = True
                left = max(0.0, self.idle_s - idle)
                self._announce(
                    f"mugpos: no tool call for {idle:.0f}s; stopping pod {self.pod_id or '?'} "
                    f"in {left:.0f}s unless a call arrives"
                )
            if idle < self.idle_s:
                return "warned"
            if now < self._next_try:
                return "retrying"
        # In flight is re-read right before acting; a call that slips in after this line
        # finds a stopping pod, which is the same as arriving a moment after the stop.
        with self._lock:
            if self.in_flight:
                return "busy"
        self._announce(f"mugpos: idle for {self.idle_s:.0f}s; stopping pod {self.pod_id or '?'}")
        try:
            self._stop_action()
        except Exception as exc:
            self.stop_error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._next_try = self._clock() + self.retry_s
            self._announce(
                f"mugpos: stopping the pod failed ({self.stop_error}); retrying in {self.retry_s:.0f}s"
            )
            return "retrying"
        self.stopped = True
        self.stop_error = None
        return "stopped"

    async def run(self) -> None:
        """Check every `poll_s` until the pod is stopped; the blocking stop request runs in a thread."""
        while True:
            state = await asyncio.to_thread(self.check) if self._due() else self.check()
            if state == "stopped":
                return
            await asyncio.sleep(self.poll_s)

    def _due(self) -> bool:
        """True when the next check may call the stop action (so it must not block the loop)."""
        with self._lock:
            return (
                not self.in_flight
                and self._clock() - self.last_activity >= self.idle_s
                and self._clock() >= self._next_try
            )

    def start(self) -> asyncio.Task[None]:
        """Run in the current event loop (idempotent); call from the server's startup."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="mugpos-idle-watchdog")
        return self._task

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "pod_id": self.pod_id,
            "idle_shutdown_s": self.idle_s,
            "warn_s": self.warn_s,
            "in_flight": self.in_flight,
            "calls": self.calls,
            "idle_for_s": round(self.idle_for(), 1),
            "warned": self.warned,
            "stopped": self.stopped,
            "stop_error": self.stop_error,
        }


def _to_stderr(message: str) -> None:
    """Warnings go through logging, which reaches stderr even unconfigured (logging.lastResort)."""
    log.warning(message)
