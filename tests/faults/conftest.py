"""Fixtures for the fault tests: settings for a real app; Redis and ports come from tests/conftest.py."""

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
def make_settings(tmp_path: Path, test_data: Path) -> Callable[..., Settings]:
    """Settings for a real app: the ONNX detector, no CLIP, everything in tmp."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "detector_weights": str(test_data / "models" / "yolov8n_int8.onnx"),
            "embedder": "none",
            "data_dir": tmp_path / "data",
            "allowed_dirs": [test_data, tmp_path],
            "device": "cpu",
            "threads": 1,
            "warmup": False,
        }
        base.update(overrides)
        return Settings(_env_file=None, **base)  # type: ignore[call-arg]

    return make
