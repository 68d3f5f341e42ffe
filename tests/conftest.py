"""Shared test fixtures: the real test data (skipped with a reason when absent), offline switches, and
the servers tests start (Redis through pytest-redis, a stand-in MongoDB, an in-memory MCP client).
Plain helpers shared by every folder live in `testkit.py`."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_redis import factories
from testkit import REDIS_MISSING, nx_mongodb, open_mcp_client

# Never reach for the network from tests: Ultralytics' checks and the HF hub fail fast instead.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")

REPO = Path(__file__).resolve().parent.parent


def _test_data() -> Path | None:
    env = os.environ.get("MUGPOS_TEST_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if (path / "README.md").exists() else None


TEST_DATA = _test_data()
NEEDS_DATA = pytest.mark.skipif(
    TEST_DATA is None, reason="test data not found: set MUGPOS_TEST_DATA to the shared data folder"
)


@pytest.fixture(scope="session")
def test_data() -> Path:
    if TEST_DATA is None:
        pytest.skip("test data not found: set MUGPOS_TEST_DATA to the shared data folder")
    return TEST_DATA


@pytest.fixture(scope="session")
def onnx_weights(test_data: Path) -> Path:
    return test_data / "models" / "yolov8n_int8.onnx"


@pytest.fixture(scope="session")
def coffee_png(test_data: Path) -> Path:
    return test_data / "photos" / "coffee.png"


@pytest.fixture
def app_env(
    tmp_path: Path, onnx_weights: Path, test_data: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment for a real mugpos process: real COCO weights, no CLIP download, private data dir."""
    env = {
        "MUGPOS_DETECTOR_WEIGHTS": str(onnx_weights),
        "MUGPOS_EMBEDDER": "none",
        "MUGPOS_DATA_DIR": str(tmp_path / "data"),
        "MUGPOS_ALLOWED_DIRS": os.pathsep.join([str(test_data), str(tmp_path)]),
        "MUGPOS_THREADS": "2",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from mugpos.settings import get_settings

    get_settings.cache_clear()
    return env


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- servers ------------------------------------------------------------------------------------
# Redis: pytest-redis's own `redis_proc` (one server for the session) and this one, which a test may
# stop, kill (a crash) and start again on the same port without touching the other. pytest-redis makes
# process fixtures session-scoped, so the wrapper hands each test a running, empty server and starts it
# again after a test that left it down.
_redis_proc_restartable = factories.redis_proc(port=None)


@pytest.fixture
def redis_proc_restartable(request: pytest.FixtureRequest) -> Iterator[Any]:
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_MISSING)
    proc = request.getfixturevalue("_redis_proc_restartable")
    if not proc.running():
        proc.start()
    import redis

    with redis.Redis(host=proc.host, port=proc.port) as client:
        client.flushall()
    yield proc
    if not proc.running():
        proc.start()


@pytest.fixture
def mongo_uri() -> Iterator[str]:
    """A stand-in MongoDB (nx-27017) for this test; skipped when it is not installed."""
    with nx_mongodb() as uri:
        yield uri


@pytest.fixture
async def mcp_client(app: Any) -> AsyncIterator[Any]:
    """An MCP client on the folder's `app` fixture, through the SDK's in-memory transport."""
    async with open_mcp_client(app) as client:
        yield client
