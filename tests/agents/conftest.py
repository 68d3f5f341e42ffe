"""Fixtures for the agent-door tests (helpers in agent_helpers.py): settings on the real COCO weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mugpos.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def agent_settings(tmp_path: Path, test_data: Path, onnx_weights: Path) -> Callable[..., Settings]:
    def make(**kw: Any) -> Settings:
        base: dict[str, Any] = {
            "detector_weights": str(onnx_weights),
            "embedder": "none",
            "data_dir": tmp_path / "data",
            "allowed_dirs": [test_data, tmp_path],
            "threads": 2,
            "rate_limit_per_min": 0,
        }
        base.update(kw)
        return Settings(_env_file=None, **base)

    return make
