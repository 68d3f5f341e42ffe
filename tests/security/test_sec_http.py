"""The HTTP door: a real `mugpos serve --transport streamable-http` subprocess on a loopback port.

Bearer token, per-client rate limit, request body limit, hostile JSON, public binds, and no secret
in any answer or log line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit import free_port
from tests_security_support import (
    SECRET_MONGO_PASSWORD,
    SECRET_S3,
    SECRET_TOKEN,
    HttpServer,
    run_http_server,
    server_env,
)

pytestmark = pytest.mark.slow

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mugpos-security-test", "version": "0"},
    },
}
BODY_LIMIT = 64 * 1024


_HTTP = httpx.Client(timeout=30)  # keep-alive: bursts are fast enough to meet the rate limit


def _post(
    server: HttpServer, body: bytes | object, token: str | None = SECRET_TOKEN, **headers: str
) -> httpx.Response:
    h = dict(MCP_HEADERS)
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return _HTTP.post(server.url + "/mcp", content=content, headers=h)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Iterator[HttpServer]:
    tmp = tmp_path_factory.mktemp("guarded")
    env = server_env(
        tmp,
        test_data,
        MUGPOS_AUTH_TOKEN=SECRET_TOKEN,
        MUGPOS_MAX_REQUEST_BYTES=str(BODY_LIMIT),
        MUGPOS_RATE_LIMIT_PER_MIN="100000",
    )
    with run_http_server(tmp, env) as server:
        yield server


def test_requests_without_the_token_are_refused(guarded: HttpServer) -> None:
    cases = {
        "no header": None,
        "wrong token": "tok-wrong",
        "token prefix": SECRET_TOKEN[:-1],
        "token plus": SECRET_TOKEN + "x",
        "other case": SECRET_TOKEN.upper(),
    }
    for name, token in cases.items():
        r = _post(guarded, INIT, token=token)
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text[:200]}"
        assert r.json()["error"]["code"] == "unauthorized"
        assert "bearer" in r.headers.get("www-authenticate", "").lower()
        assert SECRET_TOKEN not in r.text
    assert _post(guarded, INIT, token=None, Authorization="Bearer").status_code == 401
    for scheme in ("Basic", "Token", "bearer"):  # only the Bearer scheme carries it (case-insensitive)
        r = _post(guarded, INIT, token=None, Authorization=f"{scheme} {SECRET_TOKEN}")
        assert r.status_code == (200 if scheme.lower() == "bearer" else 401), scheme
    # A GET for the event stream and a DELETE of a session need the token too
    assert httpx.get(guarded.url + "/mcp", headers={"Accept": "text/event-stream"}).status_code == 401
    assert httpx.delete(guarded.url + "/mcp").status_code == 401


@pytest.mark.anyio
async def test_sdk_client_with_the_token_works(guarded: HttpServer, anyio_backend: str) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {SECRET_TOKEN}"}, timeout=60) as http,
        Client(streamable_http_client(guarded.url + "/mcp", http_client=http)) as client,
    ):
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"analyze_image", "list_rules"}
        result = await client.call_tool("analyze_image", {"image": "/etc/shadow"})
        assert result.is_error and "path_not_allowed" in result.content[0].text


def test_body_over_the_limit_is_refused(guarded: HttpServer) -> None:
    big = {**INIT, "params": {**INIT["params"], "pad": "x" * (2 * BODY_LIMIT)}}
    r = _post(guarded, big)
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the stream itself must be cut off
        yield json.dumps(big).encode()

    r = httpx.post(
        guarded.url + "/mcp",
        content=chunked(),
        headers={**MCP_HEADERS, "Authorization": f"Bearer {SECRET_TOKEN}"},
        timeout=30,
    )
    assert r.status_code == 413, f"{r.status_code} {r.text[:200]}"
    # A lying Content-Length is not an opening either: the server reads no more than it allows.
    assert httpx.get(guarded.url + "/healthz").status_code == 200


def test_deeply_nested_json_is_refused_and_the_server_survives(guarded: HttpServer) -> None:
    depth = 20_000
    body = (
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"suggest_position",'
        '"arguments":{"scene":' + '{"a":[' * depth + "1" + "]}" * depth + "}}}"
    ).encode()
    assert len(body) < BODY_LIMIT * 4
    small_limit_ok = len(body) <= BODY_LIMIT
    r = _post(guarded, body)
    assert r.status_code in (400, 413, 200), r.status_code
    if r.status_code == 200:  # a JSON-RPC error inside a 200 is a clean answer too
        assert '"error"' in r.text, r.text[:300]
    elif not small_limit_ok:
        assert r.status_code == 413
    junk = _post(guarded, b"\xff\xfe{not json")
    assert junk.status_code in (400, 415, 422), junk.status_code
    assert httpx.get(guarded.url + "/healthz").status_code == 200
    assert guarded.proc.poll() is None, "the server died"


def test_rate_limit_per_client(tmp_path: Path, test_data: Path) -> None:
    env = server_env(tmp_path, test_data, MUGPOS_AUTH_TOKEN=SECRET_TOKEN, MUGPOS_RATE_LIMIT_PER_MIN="20")
    with run_http_server(tmp_path, env) as server:
        # 20 a minute refills one every 3 s; a burst of 25 must meet the limit
        anonymous = [_post(server, INIT, token=None).status_code for _ in range(25)]
        assert anonymous[:20] == [401] * 20 and anonymous.count(429) >= 3, anonymous
        # the noisy anonymous client did not use up the real client's budget
        assert _post(server, INIT).status_code == 200
        statuses = [_post(server, INIT).status_code for _ in range(22)]
        assert 429 in statuses and statuses.index(429) >= 18, statuses
        r = _post(server, INIT)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"


def test_rotating_wrong_tokens_do_not_escape_the_rate_limit(tmp_path: Path, test_data: Path) -> None:
    """Each wrong token must not get a fresh bucket: that is unlimited guessing and unbounded memory."""
    env = server_env(tmp_path, test_data, MUGPOS_AUTH_TOKEN=SECRET_TOKEN, MUGPOS_RATE_LIMIT_PER_MIN="20")
    with run_http_server(tmp_path, env) as server:
        statuses = [_post(server, INIT, token=f"guess-{uuid.uuid4().hex}").status_code for _ in range(30)]
    # 20 allowed, then limited (a slow machine may refill a few between requests)
    assert statuses[:20] == [401] * 20 and statuses.count(429) >= 5, f"30 guesses, not limited: {statuses}"


def test_public_bind_without_a_token_refuses_to_start(tmp_path: Path, test_data: Path) -> None:
    env = server_env(tmp_path, test_data)
    for transport in ("streamable-http", "sse"):
        proc = subprocess.run(
            [sys.executable, "-m", "mugpos", "serve", "--transport", transport, "--host", "0.0.0.0",
             "--port", str(free_port())],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "MUGPOS_AUTH_TOKEN" in proc.stderr


def test_no_secrets_in_answers_or_logs(tmp_path: Path, test_data: Path) -> None:
    dead = free_port()  # a port nothing listens on: MongoDB is "down"
    mongo_uri = f"mongodb://mugpos:{SECRET_MONGO_PASSWORD}@127.0.0.1:{dead}/?serverSelectionTimeoutMS=500"
    env = server_env(
        tmp_path,
        test_data,
        MUGPOS_AUTH_TOKEN=SECRET_TOKEN,
        MUGPOS_S3_ACCESS_KEY_ID="AKIAFAKEACCESSKEY",
        MUGPOS_S3_SECRET_ACCESS_KEY=SECRET_S3,
        MUGPOS_MONGODB_URI=mongo_uri,
        MUGPOS_MONGODB_TIMEOUT_S="1",
        MUGPOS_RULE_STORE="mongodb",
        MUGPOS_LAYOUT_STORE="mongodb",
        MUGPOS_REDIS_URL=f"redis://:{SECRET_MONGO_PASSWORD}@127.0.0.1:{dead}/0",
    )
    answers: list[str] = []
    with run_http_server(tmp_path, env) as server:
        answers.append(_post(server, INIT, token="wrong").text)
        answers.append(_post(server, INIT, token=SECRET_TOKEN[:-2]).text)
        r = _post(server, INIT)
        answers.append(r.text)
        session = r.headers.get("mcp-session-id")
        extra = {"mcp-session-id": session} if session else {}
        _post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **extra)
        calls = [
            ("tools/call", {"name": "list_rules", "arguments": {}}),
            ("tools/call", {"name": "add_rule", "arguments": {"text": "keep mugs 10 cm from laptops"}}),
            ("tools/call", {"name": "analyze_image", "arguments": {"image": "/etc/passwd"}}),
            ("tools/call", {"name": "analyze_image", "arguments": {"image": "coffee.png"}}),
            ("tools/call", {"name": "explain_rule", "arguments": {"text": "z" * 5000}}),
            ("resources/read", {"uri": "mugpos://status"}),
        ]
        for i, (method, params) in enumerate(calls, start=10):
            answers.append(
                _post(server, {"jsonrpc": "2.0", "id": i, "method": method, "params": params}, **extra).text
            )
        log = server.log()
    everything = "\n".join(answers) + "\n" + log
    assert "mugpos://status" in "".join(c[1].get("uri", "") for c in calls)
    assert '"degraded"' in everything or "degraded" in everything, "the status answer was not read"
    for secret in (SECRET_TOKEN, SECRET_S3, SECRET_MONGO_PASSWORD):
        assert secret not in everything, f"secret {secret[:8]}... leaked:\n" + "\n".join(
            line for line in everything.splitlines() if secret in line
        )
