"""Fixtures for the storage tests: settings in tmp (Redis and MongoDB come from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mugpos.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path):
    def make(**overrides: object) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path / "data", **overrides)  # type: ignore[call-arg]

    return make
