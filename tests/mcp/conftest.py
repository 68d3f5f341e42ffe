"""Fixtures for the MCP server tests: an app on the real COCO weights (helpers in mcp_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mugpos.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, onnx_weights: Path, test_data: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        detector_weights=str(onnx_weights),
        embedder="none",
        data_dir=tmp_path / "data",
        allowed_dirs=[test_data, tmp_path],
        threads=2,
        rules_llm=None,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    from mugpos.operations import Mugpos

    mugpos = Mugpos(settings)
    try:
        yield mugpos
    finally:
        await mugpos.aclose()
