"""Fixtures for the engine tests: settings confined to tmp folders, the shared data, a local HTTP server."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib

from mugpos.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TINY_CLIP = "mugpos-tiny-test"


def _data_dir() -> Path:
    return Path(os.environ.get("MUGPOS_TEST_DATA") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not (d / "photos" / "coffee.png").is_file():
        pytest.skip(f"test data not found at {d} (set MUGPOS_TEST_DATA)")
    return d


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(
        _env_file=None,
        allowed_dirs=[allowed],
        data_dir=tmp_path / "data",
        url_timeout_s=2.0,
        device="cpu",
        warmup=False,
    )


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes, float]]] = {}

    def do_GET(self) -> None:
        status, headers, body, delay = self.routes.get(
            self.path, (404, {"Content-Type": "text/plain"}, b"no", 0)
        )
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[tuple[str, dict[str, tuple[int, dict[str, str], bytes, float]]]]:
    """A loopback HTTP server; tests add routes: path -> (status, headers, body, delay_s)."""
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes, float]]] = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register a tiny random open_clip architecture so embedder tests take a second, not a minute."""
    import open_clip

    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    d = tmp_path_factory.mktemp("clipcfg")
    (d / f"{TINY_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_CLIP}.json")
    return TINY_CLIP
