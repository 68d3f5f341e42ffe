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
