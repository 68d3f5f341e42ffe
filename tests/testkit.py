"""Helpers every test folder shares (import as `testkit`; pytest puts tests/ on the path for conftest.py).

One `free_port`, one way to wait for a server's port, one way to run mugpos's HTTP server in a child
process (`http_server`, `child_env`), one way to run a stand-in MongoDB (nx-27017, a
pure-Python server speaking the wire protocol), and one way to open an MCP client on an app. Redis
comes from pytest-redis: `redis_proc` (session server) and `redis_proc_restartable` (a server a test
may stop or kill), both fixtures in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
NX_27017 = shutil.which("nx-27017") or str(Path(sys.executable).parent / "nx-27017")
REDIS_MISSING = "redis-server not installed (apt-get install -y redis-server)"
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason=REDIS_MISSING)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (also the way to get a 'server is down' address)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, *, host: str = "127.0.0.1", timeout_s: float = 15.0, proc: subprocess.Popen[Any] | None = None
) -> None:
    """Return once something accepts connections on the port; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode} before listening") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listened on {host}:{port} within {timeout_s} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 15.0) -> None:
    """Terminate a child politely, kill it if it does not go within `timeout_s`, and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chromium_path() -> str:
    """Debian's Chromium (Playwright drives it; never `playwright install`), or skip the test."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium not installed (apt-get install -y chromium; .ci/run installs it)")
    raise AssertionError  # unreachable: skip raises


@dataclass
class ServedProcess:
    """A `mugpos serve` child: its base URL, the process, and the file its output goes to."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def mugpos_serve(
    tmp: Path, env: dict[str, str], *args: str, port: int | None = None, host: str = "127.0.0.1",
    timeout_s: float = 90.0,
) -> Iterator[ServedProcess]:  # fmt: skip
    """`mugpos serve --transport streamable-http` in a child process, output kept in a log file."""
    port = port or free_port()
    log_path = tmp / f"mugpos-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mugpos", "serve", "--transport", "streamable-http", "--host", host,
             "--port", str(port), *args],
            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = ServedProcess(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        try:
            wait_for_port(port, timeout_s=timeout_s, proc=proc)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}:\n{server.log()}") from None
        yield server
    finally:
        stop_process(proc)


def child_env(app_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment for a mugpos child process: this one without MUGPOS_*, then the app's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(app_env)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def http_server(env: dict[str, str], transport: str, host: str = "127.0.0.1") -> Iterator[tuple[str, float]]:
    """A `python -m mugpos.mcp_server` HTTP server; yields its base URL and the spawn time."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mugpos.mcp_server",
            "--transport",
            transport,
            "--host",
            host,
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            wait_for_port(port, timeout_s=60, proc=proc)
        except AssertionError:
            err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
            raise AssertionError(
                f"the server did not listen (exit {proc.returncode}): {err[-2000:]}"
            ) from None
        yield f"http://127.0.0.1:{port}", t0
    finally:
        stop_process(proc)
        if proc.stderr:
            proc.stderr.close()


@contextlib.contextmanager
def nx_mongodb() -> Iterator[str]:
    """A stand-in MongoDB (nx-27017, in memory) on a free loopback port; yields its URI.

    It runs the real PyMongo code paths (insert, find, indexes, aggregate); it has no Atlas Search,
    so the layout store's exact fallback runs against it. Skips the test when it is not installed.
    """
    if not Path(NX_27017).exists():
        pytest.skip("nx-27017 not installed (pip install nx-27017)")
    port = free_port()
    proc = subprocess.Popen(
        [NX_27017, "--db", "memory", "--host", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        stop_process(proc, timeout_s=10)


@contextlib.asynccontextmanager
async def open_mcp_client(app: Any) -> AsyncIterator[Any]:
    """The SDK's in-memory `Client` connected to a real MCP server built over `app` (a `Mugpos`)."""
    from mcp import Client

    from mugpos.mcp_server import build_server

    async with Client(build_server(app)) as client:
        yield client
