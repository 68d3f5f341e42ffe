"""Fixtures for the storage tests: real redis-server processes (pytest-redis) and settings in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_redis import factories

from mugpos.settings import Settings

# A second server of our own, so a test may stop and restart it without touching `redis_proc`.
redis_proc_restartable = factories.redis_proc(port=None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path):
    def make(**overrides: object) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path / "data", **overrides)  # type: ignore[call-arg]

    return make
