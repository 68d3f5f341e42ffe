"""Helpers for the operator door tests: an MCP client for a guarded server, a real Prometheus, Chromium."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from testkit import free_port, stop_process

TOKEN = "operator-token-7c2d"


@asynccontextmanager
async def mcp_client(base: str) -> AsyncIterator[Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        yield client


@contextmanager
def prometheus(tmp: Path, target: str, token: str, interval_ms: int = 1000) -> Iterator[str]:
    """Debian's prometheus on loopback scraping `target` (host:port) with the bearer token."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (apt-get install -y prometheus; .ci/run installs it)")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: {interval_ms}ms
              scrape_timeout: {interval_ms}ms
            scrape_configs:
              - job_name: mugpos
                metrics_path: /metrics
                authorization:
                  credentials: {token}
                static_configs:
                  - targets: ["{target}"]
            """
        )
    )
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(
                    f"prometheus did not start: {(tmp / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield base
    finally:
        stop_process(proc, timeout_s=10)
        log.close()
