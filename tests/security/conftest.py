"""Fixtures for the security tests: a real MCP server (in memory and over HTTP) and a local web host."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from testkit import open_mcp_client

from mugpos.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a local web host that records what it was asked for ------------------------------------------


@dataclass
class WebHost:
    base: str
    routes: dict[str, tuple[int, dict[str, str], bytes]]
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return self.base + path


def _start_web(host: str) -> tuple[ThreadingHTTPServer, WebHost]:
    web = WebHost(base="", routes={})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            web.hits[self.path] += 1
            status, headers, body = web.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web.base = f"http://{host}:{server.server_address[1]}"
    return server, web


@pytest.fixture
def web_hosts() -> Iterator[tuple[WebHost, WebHost]]:
    """Two hosts: 127.0.0.1 (the private target) and 127.0.0.2 (played as a public host in one test)."""
    a, web_a = _start_web("127.0.0.1")
    try:
        b, web_b = _start_web("127.0.0.2")
    except OSError:
        a.shutdown()
        pytest.skip("127.0.0.2 is not routable on this machine")
    try:
        yield web_a, web_b
    finally:
        for s in (a, b):
            s.shutdown()
            s.server_close()


# --- the app and its MCP server in memory ---------------------------------------------------------


@dataclass
class Folders:
    allowed: Path
    outside: Path


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    return Folders(allowed, outside)


@pytest.fixture
def make_settings(tmp_path: Path, test_data: Path, folders: Folders) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "detector_weights": str(test_data / "models" / "yolov8n_int8.onnx"),
            "embedder": "none",
            "data_dir": tmp_path / "data",
            "allowed_dirs": [folders.allowed, test_data / "photos"],
            "device": "cpu",
            "threads": 1,
            "warmup": False,
            "url_timeout_s": 5.0,
        }
        base.update(overrides)
        return Settings(_env_file=None, **base)  # type: ignore[call-arg]

    return make


@dataclass
class ToolAnswer:
    is_error: bool
    text: str
    structured: dict[str, Any] | None

    @property
    def code(self) -> str | None:
        """The error code from 'error (code): message'."""
        if self.text.startswith("error (") and ")" in self.text:
            return self.text[len("error (") : self.text.index(")")]
        return None


class McpClient:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, tool: str, **arguments: Any) -> ToolAnswer:
        result = await self.client.call_tool(tool, arguments)
        text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        return ToolAnswer(bool(result.is_error), text, result.structured_content)


@pytest.fixture
def mcp_factory(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with mcp_factory(**settings) as client:` a real MCPServer over the SDK's in-memory Client."""

    @contextlib.asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[McpClient]:
        from mugpos.operations import Mugpos

        app = Mugpos(make_settings(**overrides))
        try:
            async with open_mcp_client(app) as client:
                yield McpClient(client)
        finally:
            await app.aclose()

    return open_client
