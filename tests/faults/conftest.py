"""Fixtures for the fault tests: a real redis-server this test may kill and restart on one port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mugpos.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on a fixed loopback port, with no persistence."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the crash case, not a polite shutdown."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


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
