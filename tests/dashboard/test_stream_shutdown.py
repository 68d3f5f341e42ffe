"""An open dashboard must not hold up a stopping server (uvicorn waits for every open response)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from testkit import REPO, child_env, free_port

pytestmark = pytest.mark.slow


def test_sigterm_ends_open_event_streams(app_env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mugpos", "serve", "--transport", "streamable-http", "--port", str(port)],
        env=child_env(app_env), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    got: list[str] = []
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError("server did not come up") from None
                time.sleep(0.2)

        def follow() -> None:
            with httpx.stream("GET", f"{base}/dashboard/events", timeout=None) as resp:
                for line in resp.iter_lines():
                    got.append(line)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        while not any(line.startswith("event: state") for line in got):
            assert time.time() < deadline + 30, "no state event"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)  # without the fix: uvicorn waits for the stream forever
        reader.join(timeout=5)
        assert not reader.is_alive(), "the stream did not end with the server"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
