"""JSON-RPC errors as the MCP spec says, where the SDK (2.3) answers otherwise (see mcp_server/auth.py
and server.py for the upstream issues): -32600 for a non-request, -32602 for a bad prompts/get,
and no ERROR traceback for a client's mistake."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests_security_support import HttpServer, run_http_server, server_env

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Iterator[HttpServer]:
    tmp = tmp_path_factory.mktemp("protocol")
    with run_http_server(tmp, server_env(tmp, test_data)) as server:
        yield server


@pytest.mark.slow
def test_a_body_that_is_not_a_jsonrpc_request_is_invalid_request(open_server: HttpServer) -> None:
    cases = {
        "no jsonrpc": ({"id": 7, "method": "tools/list"}, 7),
        "jsonrpc 1.0": ({"jsonrpc": "1.0", "id": "a", "method": "ping"}, "a"),
        "method not a string": ({"jsonrpc": "2.0", "id": 8, "method": 42}, 8),
        "no method": ({"jsonrpc": "2.0", "id": 9, "params": {}}, 9),
        "not an object": ("hello", None),
        "id an object": ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}, None),
    }
    for name, (body, request_id) in cases.items():
        r = httpx.post(open_server.url + "/mcp", content=json.dumps(body), headers=HEADERS, timeout=30)
        assert r.status_code == 400, f"{name}: {r.status_code} {r.text[:200]}"
        answer = r.json()
        assert answer["jsonrpc"] == "2.0" and answer["id"] == request_id, name
        assert answer["error"]["code"] == -32600, f"{name}: {answer}"
        assert len(r.text) < 300, "no validation dump"
    # Valid envelopes still reach the SDK: not JSON at all is a parse error, initialize works.
    r = httpx.post(open_server.url + "/mcp", content=b"{nope", headers=HEADERS, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
    assert httpx.post(open_server.url + "/mcp", content=json.dumps(init), headers=HEADERS).status_code == 200


@pytest.mark.anyio
async def test_prompts_get_errors_are_invalid_params_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mcp.shared.exceptions import MCPError
    from testkit import open_mcp_client

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, detector_weights="yolov8n.yaml", embedder="none")  # type: ignore[call-arg]
    caplog.set_level(logging.INFO)
    async with open_mcp_client(Mugpos(settings)) as client:
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("no_such_prompt", {})
        assert unknown.value.code == -32602 and "no_such_prompt" in unknown.value.message
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("review_my_desk", {})
        assert missing.value.code == -32602 and "image" in missing.value.message
        ok = await client.get_prompt("review_my_desk", {"image": "desk.jpg"})
        assert "desk.jpg" in ok.messages[0].content.text  # type: ignore[union-attr]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.slow
def test_stdio_answers_lines_that_are_not_jsonrpc(tmp_path: Path) -> None:
    """Over stdio the SDK drops such a line and the client waits forever; we answer it."""
    import os
    import queue
    import subprocess
    import sys
    import threading

    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(MUGPOS_DATA_DIR=str(tmp_path), MUGPOS_DETECTOR_WEIGHTS="yolov8n.yaml", MUGPOS_EMBEDDER="none",
               MUGPOS_WARMUP="false", YOLO_OFFLINE="1", HF_HUB_OFFLINE="1")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "mugpos", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def ask(raw: str) -> dict:
        assert proc.stdin is not None
        proc.stdin.write(raw + "\n")
        proc.stdin.flush()
        return json.loads(lines.get(timeout=60))

    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
        assert "result" in ask(json.dumps(init))
        assert ask('{"id": 7, "method": "tools/list"}') == {
            "jsonrpc": "2.0", "id": 7,
            "error": {"code": -32600, "message": 'Invalid Request: the "jsonrpc" member must be exactly "2.0"'},
        }  # fmt: skip
        assert ask("{nope")["error"]["code"] == -32700
        bad_method = ask('{"jsonrpc": "2.0", "id": 9, "method": 42}')
        assert bad_method["id"] == 9 and bad_method["error"]["code"] == -32600
        unknown = ask('{"jsonrpc": "2.0", "id": 8, "method": "prompts/get", "params": {"name": "nope"}}')
        assert unknown["id"] == 8 and unknown["error"]["code"] == -32602
        assert ask('{"jsonrpc": "2.0", "id": 10, "method": "ping"}') == {
            "jsonrpc": "2.0",
            "id": 10,
            "result": {},
        }
    finally:
        proc.kill()
        proc.wait()
