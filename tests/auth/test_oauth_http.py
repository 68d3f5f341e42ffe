"""`mugpos serve` as an OAuth 2.1 resource server, against a real oidc-provider on loopback.

What a client sees: the 401 and its RFC 9728 metadata, tokens accepted and refused (expired, wrong
audience, wrong issuer, tampered), per-tool scopes with a 403 `insufficient_scope` challenge, the
static token beside OAuth, and no token in any answer or log line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests_auth_support import (
    BOTH,
    STATIC_TOKEN,
    MemoryTokens,
    MugposServer,
    OidcServer,
    claims_of,
    oidc_server,
    rsa_jwk,
    tamper,
)

pytestmark = pytest.mark.slow

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "auth-test", "version": "0"},
    },
}


def post(server: MugposServer, body: Any, token: str | None, **headers: str) -> httpx.Response:
    h = {**HEADERS, **headers}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url + "/mcp", content=json.dumps(body), headers=h, timeout=60)


def session(server: MugposServer, token: str) -> dict[str, str]:
    """initialize + initialized; the headers later requests in that session carry."""
    r = post(server, INIT, token)
    assert r.status_code == 200, r.text
    extra = {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    post(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token, **extra)
    return extra


def call(
    server: MugposServer, token: str, extra: dict[str, str], tool: str, args: dict[str, Any]
) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    return post(server, body, token, **extra)


def challenge(r: httpx.Response) -> dict[str, str]:
    value = r.headers.get("www-authenticate", "")
    assert value.lower().startswith("bearer "), value
    parts = {}
    for item in value[7:].split('", '):
        k, _, v = item.partition("=")
        parts[k.strip()] = v.strip().strip('"')
    return parts


def test_401_names_the_metadata_and_the_metadata_names_the_issuer(
    server: MugposServer, oidc: OidcServer
) -> None:
    r = httpx.get(server.url + "/mcp", headers={"Accept": "text/event-stream"})
    assert r.status_code == 401
    params = challenge(r)
    assert params["error"] == "invalid_token"
    assert params["resource_metadata"] == f"{server.url}/.well-known/oauth-protected-resource/mcp"
    assert set(params["scope"].split()) == {"mugpos:read", "mugpos:write"}
    meta = httpx.get(params["resource_metadata"]).json()
    assert meta["resource"] == server.url + "/mcp"
    assert meta["authorization_servers"] == [oidc.issuer]
    assert set(meta["scopes_supported"]) == {"mugpos:read", "mugpos:write"}
    assert meta["bearer_methods_supported"] == ["header"]
    # The issuer the metadata names really is an authorization server a client can use.
    assert oidc.metadata()["issuer"] == oidc.issuer
    assert httpx.get(server.url + "/healthz").status_code == 200  # the probe stays open


def test_valid_token_works_end_to_end(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    token = oidc.token("full", resource, BOTH)
    assert claims_of(token)["aud"] == resource
    extra = session(server, token)
    r = call(server, token, extra, "add_rule", {"text": "keep mugs at least 10 cm from laptops"})
    assert r.status_code == 200 and '"isError":false' in r.text.replace(" ", ""), r.text[:400]
    r = call(server, token, extra, "list_rules", {})
    assert r.status_code == 200 and "laptop" in r.text


@pytest.mark.anyio
async def test_sdk_client_with_an_oauth_token(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    token = oidc.token("full", resource, BOTH)
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        assert {"analyze_image", "add_rule"} <= {t.name for t in tools.tools}
        result = await client.call_tool("list_rules", {})
        assert not result.is_error


def test_missing_scope_is_403_insufficient_scope(
    server: MugposServer, oidc: OidcServer, resource: str
) -> None:
    token = oidc.token("reader", resource, "mugpos:read")
    assert claims_of(token)["scope"] == "mugpos:read"
    extra = session(server, token)
    assert call(server, token, extra, "list_rules", {}).status_code == 200
    r = call(server, token, extra, "add_rule", {"text": "keep mugs at least 10 cm from laptops"})
    assert r.status_code == 403, r.text
    params = challenge(r)
    assert params["error"] == "insufficient_scope" and params["scope"] == "mugpos:write"
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    assert r.json()["error"]["code"] == "insufficient_scope"
    # A token with no mugpos scope at all may connect, but not analyse or read rules.
    bare = oidc.token("reader", resource)
    extra = session(server, bare)
    r = call(server, bare, extra, "list_rules", {})
    assert r.status_code == 403 and challenge(r)["scope"] == "mugpos:read"


def test_expired_token_is_refused(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    token = oidc.token("short", resource, BOTH)  # one-second lifetime
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 1
    time.sleep(max(0.0, claims["exp"] - time.time()) + 1.2)
    r = post(server, INIT, token)
    assert r.status_code == 401
    assert challenge(r)["error"] == "invalid_token"


def test_wrong_audience_is_refused(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    other = "http://127.0.0.1:1/mcp"  # a token for another MCP server must not work here
    token = oidc.token("full", other, BOTH)
    assert claims_of(token)["aud"] == other
    assert post(server, INIT, token).status_code == 401
    assert post(server, INIT, oidc.token("full", resource, BOTH)).status_code == 200


def test_wrong_issuer_is_refused(
    server: MugposServer, oidc: OidcServer, oidc_keys: list[dict[str, Any]], resource: str, tmp_path: Path
) -> None:
    """Another authorization server, even one signing with the very key we trust, is not ours."""
    with oidc_server(tmp_path, oidc_keys) as impostor:
        token = impostor.token("full", resource, BOTH)
        assert claims_of(token)["iss"] == impostor.issuer != oidc.issuer
        r = post(server, INIT, token)
    assert r.status_code == 401
    assert challenge(r)["error"] == "invalid_token"


def test_tampered_and_malformed_tokens_are_refused(
    server: MugposServer, oidc: OidcServer, resource: str
) -> None:
    reader = oidc.token("reader", resource, "mugpos:read")
    escalated = tamper(reader, scope=BOTH)
    other_aud = tamper(oidc.token("full", "http://127.0.0.1:1/mcp", BOTH), aud=resource)
    header, payload, _ = reader.split(".")
    cases = {
        "scope escalated": escalated,
        "audience rewritten": other_aud,
        "signature removed": f"{header}.{payload}.",
        "alg none": tamper_header(reader, alg="none") + ".",
        "not a JWT": "definitely-not-a-jwt",
    }
    for name, token in cases.items():
        r = post(server, INIT, token)
        assert r.status_code == 401, f"{name}: {r.status_code}"


def tamper_header(token: str, **fields: Any) -> str:
    import base64

    header, payload, _ = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    data.update(fields)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + payload


def test_static_token_still_works_beside_oauth(server: MugposServer) -> None:
    r = post(server, INIT, STATIC_TOKEN)
    assert r.status_code == 200
    assert post(server, INIT, STATIC_TOKEN + "x").status_code == 401


def test_keys_are_discovered_and_cached(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    token = oidc.token("full", resource, BOTH)
    for _ in range(5):
        assert post(server, INIT, token).status_code == 200
    # Discovery went through the issuer's metadata, and the key set was read once for all of it.
    assert (
        oidc.hits("/.well-known/oauth-authorization-server") + oidc.hits("/.well-known/openid-configuration")
        >= 1
    )
    assert oidc.hits("/jwks") == 1, [line for line in oidc.lines if line.startswith("REQ")]


def test_no_token_in_answers_or_logs(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    token = oidc.token("full", resource, BOTH)
    reader = oidc.token("reader", resource, "mugpos:read")
    answers = [post(server, INIT, token).text, post(server, INIT, tamper(reader, scope=BOTH)).text]
    extra = session(server, reader)
    answers.append(call(server, reader, extra, "remove_rule", {"rule_id": "x"}).text)
    everything = "\n".join(answers) + server.log()
    for secret in (token, reader, STATIC_TOKEN, token.split(".")[2], reader.split(".")[2]):
        assert secret not in everything


def test_rotated_keys_are_picked_up(needs_oidc: None, tmp_path: Path) -> None:
    """The issuer rotates its signing key (restart with a new key set on the same address)."""
    from tests_auth_support import free_port, mugpos_env, mugpos_server

    port, mport = free_port(), free_port()
    resource = f"http://127.0.0.1:{mport}/mcp"
    env = mugpos_env(tmp_path, MUGPOS_OAUTH_ISSUER=f"http://127.0.0.1:{port}",
                     MUGPOS_PUBLIC_URL=f"http://127.0.0.1:{mport}", MUGPOS_OAUTH_JWKS_REFRESH_COOLDOWN_S="0")  # fmt: skip
    with mugpos_server(tmp_path, env, port=mport) as srv:
        with oidc_server(tmp_path, [rsa_jwk("old")], port=port) as before:
            old = before.token("full", resource, BOTH)
            assert post(srv, INIT, old).status_code == 200
        with oidc_server(tmp_path, [rsa_jwk("new")], port=port) as after:
            new = after.token("full", resource, BOTH)
            r = post(srv, INIT, new)
            assert r.status_code == 200, r.text  # an unknown kid makes the server re-read the keys
            assert after.hits("/jwks") == 1
            assert post(srv, INIT, old).status_code == 401  # the retired key no longer signs anything


@pytest.mark.anyio
async def test_the_sdk_oauth_client_discovers_everything_from_the_401(
    server: MugposServer, oidc: OidcServer, resource: str
) -> None:
    """No token configured by hand: 401 -> protected-resource metadata -> issuer metadata -> token
    (client credentials, resource indicator) -> the call, all by the MCP SDK's own OAuth client."""
    import httpx2
    from mcp import Client
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.client.streamable_http import streamable_http_client

    storage = MemoryTokens()
    auth = ClientCredentialsOAuthProvider(
        server_url=resource,
        storage=storage,
        client_id="full",
        client_secret="full-secret-0123456789",
        scope=BOTH,
        issuer=oidc.issuer,
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        result = await client.call_tool("list_rules", {})
        assert not result.is_error
    token = storage.tokens.access_token
    assert claims_of(token)["aud"] == resource and claims_of(token)["iss"] == oidc.issuer
