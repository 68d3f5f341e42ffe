"""Redis and MongoDB reachability on /metrics: a real redis-server that crashes, a stand-in MongoDB.

`mugpos_backend_up{backend}` is 1 while the configured backend answers and 0 once a call to it has
failed; the dashboard's snapshot says the same. Redis is pytest-redis's real server (killed with
SIGKILL mid-test); MongoDB is the nx-27017 stand-in speaking the wire protocol to PyMongo.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from mugpos.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def settings(tmp_path: Path, test_data: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "detector_weights": str(test_data / "models" / "yolov8n_int8.onnx"), "embedder": "none",
        "data_dir": tmp_path / "data", "allowed_dirs": [test_data, tmp_path], "device": "cpu",
        "threads": 1, "rules_llm": None,
    }  # fmt: skip
    return Settings(_env_file=None, **(base | kw))  # type: ignore[call-arg]


def metric_line(text: str, name: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(name)), "")


async def test_redis_and_mongodb_up_then_redis_down(
    tmp_path: Path, test_data: Path, coffee_png: Path, redis_proc_restartable: Any, mongo_uri: str
) -> None:
    from mugpos import telemetry
    from mugpos.dashboard.snapshot import refresh_gauges, snapshot
    from mugpos.operations import Mugpos

    redis = redis_proc_restartable
    app = Mugpos(
        settings(
            tmp_path,
            test_data,
            redis_url=f"redis://{redis.host}:{redis.port}/0",
            redis_timeout_s=0.25,
            cache_l2_bytes=0,
            rule_store="mongodb",
            mongodb_uri=mongo_uri,
        )
    )
    try:
        await app.analyze(str(coffee_png), use_saved_rules=False)
        await app.list_rules()  # opens the rule store on MongoDB
        snap = await snapshot(app)
        assert snap["backends"] == {"redis": True, "mongodb": True}, snap["backends"]
        refresh_gauges(snap)
        text = telemetry.render().decode()
        assert metric_line(text, 'mugpos_backend_up{backend="redis"}').endswith(" 1.0")
        assert metric_line(text, 'mugpos_backend_up{backend="mongodb"}').endswith(" 1.0")

        redis.kill(sig=signal.SIGKILL)
        await app.analyze(str(coffee_png), use_saved_rules=False)  # the cache call fails; analysis works
        snap = await snapshot(app)
        assert snap["backends"]["redis"] is False and snap["cache"]["l1"]["degraded"]
        refresh_gauges(snap)
        text = telemetry.render().decode()
        assert metric_line(text, 'mugpos_backend_up{backend="redis"}').endswith(" 0.0")
    finally:
        await app.aclose()
