"""The idle watchdog's countdown on the dashboard and /metrics (a timed pod), with a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mugpos.settings import Settings

pytestmark = pytest.mark.anyio


async def test_idle_seconds_left(tmp_path: Path) -> None:
    from mugpos import telemetry
    from mugpos.dashboard.snapshot import refresh_gauges, snapshot
    from mugpos.deploy.watchdog import IdleWatchdog
    from mugpos.operations import Mugpos

    now = [1000.0]
    stops: list[Any] = []
    app = Mugpos(Settings(_env_file=None, data_dir=tmp_path / "d", embedder="none"))  # type: ignore[call-arg]
    app.watchdog = IdleWatchdog(600, lambda: stops.append(1), pod_id="pod-7", clock=lambda: now[0])
    try:
        now[0] += 150
        idle = (await snapshot(app, with_recent=False))["idle"]
        assert idle["seconds_left"] == 450 and not idle["busy"] and idle["pod_id"] == "pod-7"
        app.watchdog.begin()  # a call in flight: no countdown
        snap = await snapshot(app, with_recent=False)
        assert snap["idle"]["busy"] and snap["idle"]["seconds_left"] is None
        app.watchdog.end()
        now[0] += 100
        snap = await snapshot(app, with_recent=False)
        assert snap["idle"]["seconds_left"] == 500
        refresh_gauges(snap)
        assert 'mugpos_idle_shutdown_seconds_left{pod="pod-7"} 500.0' in telemetry.render().decode()
        assert not stops
    finally:
        await app.aclose()
