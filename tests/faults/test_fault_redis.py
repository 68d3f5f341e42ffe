"""Redis killed (SIGKILL) and restarted under a running app: requests keep succeeding throughout.

The in-process tier is switched off (`cache_l2_bytes=0`) so every request really goes to Redis and
the outage is felt by each call, not hidden by the local LRU.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from mugpos.operations import Mugpos

pytestmark = pytest.mark.anyio

CALL_BOUND_S = 20.0  # a hang fails the test; real calls take well under a second


async def _analyze(app: Mugpos, image: Path) -> tuple[list[str], str | None]:
    async with asyncio.timeout(CALL_BOUND_S):
        out = await app.analyze(str(image), use_saved_rules=False, store=False, annotate=False)
    result = out.result
    return [f"{o.label}:{[round(c) for c in o.box]}" for o in result.scene.objects], result.timings.cache


async def _l1(app: Mugpos) -> dict:
    status = await app.status()
    return status.cache["l1"], status.degraded


async def test_redis_crash_and_restart_keeps_serving(
    test_data: Path, redis_proc_restartable, make_settings
) -> None:
    redis_server = redis_proc_restartable  # pytest-redis: a server of this test's own, on one port
    url = f"redis://{redis_server.host}:{redis_server.port}/0"
    settings = make_settings(redis_url=url, cache_l2_bytes=0, redis_timeout_s=0.25)
    app = Mugpos(settings)
    coffee = test_data / "photos" / "coffee.png"
    try:
        # 1. healthy: a miss, then a hit served by Redis
        objects, tier = await _analyze(app, coffee)
        assert any(o.startswith("cup:") for o in objects) and tier is None
        again, tier = await _analyze(app, coffee)
        assert again == objects and tier == "l1"
        l1, degraded = await _l1(app)
        assert (
            l1["degraded"] is False and l1["details"]["hits"] >= 1 and not any("cache" in d for d in degraded)
        )

        # 2. Redis crashes: the same requests still succeed (computed again), status says degraded
        redis_server.kill(sig=signal.SIGKILL)  # a crash, not a polite shutdown
        for _ in range(3):
            during, tier = await _analyze(app, coffee)
            assert during == objects and tier is None
        l1, degraded = await _l1(app)
        assert l1["degraded"] is True and l1["details"]["errors"] >= 1 and l1["details"]["last_error"]
        assert any(d.startswith("cache l1") for d in degraded), degraded

        # 3. Redis comes back (empty) on the same port: after the backoff the tier recovers
        redis_server.start()
        deadline = time.monotonic() + 15
        while True:
            after, _ = await _analyze(app, coffee)
            assert after == objects
            l1, degraded = await _l1(app)
            if not l1["degraded"]:
                break
            assert time.monotonic() < deadline, f"Redis tier never recovered: {l1}"
            await asyncio.sleep(0.2)
        assert not any(d.startswith("cache l1") for d in degraded)
        # the value written after recovery is served by Redis again
        hits_before = l1["details"]["hits"]
        final, tier = await _analyze(app, coffee)
        if tier is None:  # the recovering call was the probe; the next one stores then hits
            final, tier = await _analyze(app, coffee)
        assert final == objects and tier == "l1"
        l1, _ = await _l1(app)
        assert l1["details"]["hits"] > hits_before
    finally:
        await app.aclose()
