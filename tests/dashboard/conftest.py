"""Fixtures for the operator door: a guarded streamable-HTTP server (helpers in operator_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mcp"))  # mcp_helpers: servers on free ports

from mcp_helpers import child_env, http_server
from operator_helpers import TOKEN


@pytest.fixture
def server(app_env: dict[str, str]) -> Iterator[str]:
    """A streamable-HTTP mugpos server that requires TOKEN; yields its base URL."""
    env = child_env(app_env, MUGPOS_AUTH_TOKEN=TOKEN)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with http_server(env, "streamable-http") as (base, _):
        yield base
