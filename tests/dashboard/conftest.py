"""Fixtures for the operator door: a guarded streamable-HTTP server (helpers in operator_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from operator_helpers import TOKEN
from testkit import child_env, http_server


@pytest.fixture
def server(app_env: dict[str, str]) -> Iterator[str]:
    """A streamable-HTTP mugpos server that requires TOKEN; yields its base URL."""
    env = child_env(app_env, MUGPOS_AUTH_TOKEN=TOKEN)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with http_server(env, "streamable-http") as (base, _):
        yield base
