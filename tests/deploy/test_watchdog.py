"""The idle watchdog stops the pod through the real runpod SDK, talking to a local recording server."""

from __future__ import annotations

import time

import anyio
import pytest
import runpod
from pydantic import SecretStr

from mugpos.deploy.watchdog import IdleWatchdog, runpod_stopper
from mugpos.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _no_global_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runpod, "api_key", None)
    monkeypatch.delenv("RUNPOD_POD_ID", raising=False)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)


def make(clock: FakeClock, messages: list[str], idle: float = 600, warn: float = 60) -> IdleWatchdog:
    return IdleWatchdog(
        idle,
        runpod_stopper("pod-abc", "key-123"),
        warn_s=warn,
        pod_id="pod-abc",
        clock=clock,
        announce=messages.append,
    )


def test_stops_after_idleness_with_a_warning_first(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = make(clock, messages)
    clock.advance(539)
    assert wd.check() == "idle"
    assert messages == [] and runpod_api.requests == []
    clock.advance(2)  # 541 s idle: inside the warning window
    assert wd.check() == "warned"
    assert len(messages) == 1 and "pod-abc" in messages[0] and "59s" in messages[0]
    assert runpod_api.requests == []
    clock.advance(58.9)
    assert wd.check() == "warned"
    assert runpod_api.requests == []
    clock.advance(0.2)  # 600.1 s
    assert wd.check() == "stopped"
    stops = runpod_api.queries("podStop")
    assert len(stops) == 1
    assert 'podId: "pod-abc"' in stops[0]
    assert runpod_api.requests[0]["path"] == "/graphql"
    assert runpod_api.requests[0]["authorization"] == "Bearer key-123"
    clock.advance(10_000)
    assert wd.check() == "stopped"
    assert len(runpod_api.requests) == 1  # stopped once, not on every poll


def test_never_stops_during_a_long_call(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = make(clock, messages)
    clock.advance(300)
    wd.begin()
    for _ in range(10):  # a call running for an hour
        clock.advance(360)
        assert wd.check() == "busy"
    assert runpod_api.requests == [] and messages == []
    wd.end()
    clock.advance(599)  # idleness counts from the end of the call
    assert wd.check() == "warned"
    assert runpod_api.requests == []
    clock.advance(1)
    assert wd.check() == "stopped"
    assert len(runpod_api.queries("podStop")) == 1


def test_overlapping_calls_keep_the_pod_up_until_the_last_ends(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = make(clock, messages, idle=10, warn=2)
    wd.begin()
    wd.begin()
    clock.advance(20)
    wd.end()
    clock.advance(20)
    assert wd.check() == "busy"
    wd.end()
    clock.advance(9.9)
    assert wd.check() == "warned"
    assert runpod_api.requests == []


def test_activity_after_the_warning_cancels_it(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = make(clock, messages)
    clock.advance(570)
    assert wd.check() == "warned"
    wd.begin()
    wd.end()
    assert "cancelled" in messages[-1]
    clock.advance(100)
    assert wd.check() == "idle"
    clock.advance(499)
    assert wd.check() == "warned"
    assert runpod_api.requests == []
    clock.advance(1)
    assert wd.check() == "stopped"


def test_a_failed_stop_is_retried(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = make(clock, messages, idle=10, warn=0)
    runpod_api.fail_with = 500
    clock.advance(10)
    assert wd.check() == "retrying"
    assert wd.stop_error and not wd.stopped
    assert "retrying" in messages[-1]
    clock.advance(5)
    assert wd.check() == "retrying"
    assert len(runpod_api.queries("podStop")) == 1  # waits retry_s before the next try
    runpod_api.fail_with = None
    clock.advance(30)
    assert wd.check() == "stopped"
    assert len(runpod_api.queries("podStop")) == 2
    assert wd.stop_error is None


def test_from_settings_needs_a_pod_and_a_positive_timeout() -> None:
    on_pod = {"RUNPOD_POD_ID": "pod-env", "RUNPOD_API_KEY": "k"}
    assert IdleWatchdog.from_settings(Settings(idle_shutdown_s=0), env=on_pod) is None
    assert IdleWatchdog.from_settings(Settings(idle_shutdown_s=600), env={}) is None
    wd = IdleWatchdog.from_settings(Settings(idle_shutdown_s=600, idle_warn_s=30), env=on_pod)
    assert wd is not None and wd.pod_id == "pod-env" and wd.idle_s == 600 and wd.warn_s == 30
    wd = IdleWatchdog.from_settings(Settings(runpod_pod_id="pod-set"), env=on_pod)
    assert wd is not None and wd.pod_id == "pod-set" and wd.idle_s == 600  # the documented default


def test_missing_api_key_is_reported_not_raised(runpod_api) -> None:
    clock, messages = FakeClock(), []
    wd = IdleWatchdog(1, runpod_stopper("pod-abc", None), warn_s=0, clock=clock, announce=messages.append)
    clock.advance(2)
    assert wd.check() == "retrying"
    assert "API key" in (wd.stop_error or "")
    assert runpod_api.requests == []


@pytest.mark.anyio
async def test_background_task_on_real_time(runpod_api) -> None:
    """The real loop with a real clock: a call longer than the timeout, then a stop soon after it ends."""
    settings = Settings(
        idle_shutdown_s=0.4,
        idle_warn_s=0.2,
        runpod_pod_id="pod-live",
        runpod_api_key=SecretStr("live-key"),
    )
    messages: list[str] = []
    wd = IdleWatchdog.from_settings(settings, env={}, announce=messages.append, poll_s=0.02)
    assert wd is not None
    wd.start()
    try:
        async with wd.track():
            await anyio.sleep(0.8)  # twice the timeout, in flight
            assert runpod_api.requests == []
        ended = time.monotonic()
        with anyio.fail_after(3):
            while not wd.stopped:
                await anyio.sleep(0.02)
        waited = time.monotonic() - ended
        assert waited >= 0.38  # not before the deadline
        assert any("stopping pod pod-live in" in m for m in messages)  # warned first
        stops = runpod_api.queries("podStop")
        assert len(stops) == 1 and 'podId: "pod-live"' in stops[0]
        assert runpod_api.requests[0]["authorization"] == "Bearer live-key"
    finally:
        await wd.aclose()
