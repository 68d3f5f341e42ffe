"""Real servers in subprocesses: stdio, streamable HTTP and SSE, with and without the bearer token.

Over each transport an SDK client analyses coffee.png, adds a rule, gets a suggestion for the
stored analysis and reads the analysis back as a resource. The stdio test also measures the time
from spawning the server to the `initialize` answer and to the first finished analysis.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_helpers import REPO, child_env, http_server, run_flow
from testkit import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TOKEN = "test-token-5b1e0c"


async def test_stdio_subprocess(app_env: dict[str, str], coffee_png: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mugpos.mcp_server"], env=child_env(app_env), cwd=str(REPO)
    )
    t0 = time.perf_counter()
    async with Client(params) as client:
        initialized = time.perf_counter() - t0
        assert client.server_info is not None and client.server_info.name == "mugpos"
        t_flow = time.perf_counter() - t0
        flow = await run_flow(client, str(coffee_png))
        first_analysis = t_flow + float(flow["analyze_s"])  # type: ignore[arg-type]
    assert flow["progress"], "no progress notifications over stdio"
    print(
        f"\nstdio: spawn -> initialize {initialized:.2f} s; spawn -> first analyze_image {first_analysis:.2f} s"
    )
    assert initialized < first_analysis


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_without_token_on_loopback(
    transport: str, app_env: dict[str, str], coffee_png: Path
) -> None:
    with http_server(child_env(app_env), transport) as (base, _):
        async with Client(_transport(base, transport, None)) as client:
            await run_flow(client, str(coffee_png))
        health = httpx2.get(f"{base}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_with_token(transport: str, app_env: dict[str, str], coffee_png: Path) -> None:
    env = child_env(
        app_env, MUGPOS_AUTH_TOKEN=TOKEN, MUGPOS_RATE_LIMIT_PER_MIN="40", MUGPOS_MAX_REQUEST_BYTES="4096"
    )
    with http_server(env, transport) as (base, _):
        async with Client(_transport(base, transport, TOKEN)) as client:
            await run_flow(client, str(coffee_png))

        path = "/mcp" if transport == "streamable-http" else "/sse"
        bare = httpx2.get(f"{base}{path}")
        assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in bare.text
        wrong = httpx2.get(f"{base}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

        big = httpx2.post(
            f"{base}/mcp" if transport == "streamable-http" else f"{base}/messages/",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            content=b"{" + b" " * 10_000 + b"}",
        )
        assert big.status_code == 413 and "MUGPOS_MAX_REQUEST_BYTES" in big.text

        # Wrong tokens spend their own bucket (40 a minute): soon refused with 429 and Retry-After.
        codes = [httpx2.get(f"{base}/healthz", headers={"Authorization": "Bearer x"}) for _ in range(45)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1
        assert httpx2.get(f"{base}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_refuses_public_bind_without_token(app_env: dict[str, str]) -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "mugpos.mcp_server", "--transport", "streamable-http", "--host", "0.0.0.0",
         "--port", str(port)],
        env=child_env(app_env), cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "MUGPOS_AUTH_TOKEN" in done.stderr and "Traceback" not in done.stderr


def _transport(base: str, transport: str, token: str | None) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    if transport == "sse":
        return sse_client(f"{base}/sse", headers=headers, timeout=30)
    return streamable_http_client(f"{base}/mcp", http_client=create_mcp_http_client(headers=headers))
