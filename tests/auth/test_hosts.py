"""Host and Origin checks on every bind: the policy itself, then a real server bound to 0.0.0.0."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests_auth_support import free_port, mugpos_env, mugpos_server

from mugpos.access.hosts import host_policy
from mugpos.errors import ConfigError
from mugpos.mcp_server.http import build_access, public_base_url
from mugpos.mcp_server.transports import check_bind
from mugpos.settings import Settings

TOKEN = "tok-hosts-tests-77aa"
INIT = (
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    '"capabilities":{},"clientInfo":{"name":"hosts-test","version":"0"}}}'
)


def test_policy_names_ips_and_wildcards() -> None:
    p = host_policy(
        public_url="https://mugs.example.com", allowed_hosts=["lan-box", "*.corp.example"], port=8765
    )
    for ok in ("127.0.0.1:8765", "10.1.2.3", "[::1]:8765", "[2001:db8::1]", "localhost:8765",
               "mugs.example.com", "MUGS.example.com:443", "lan-box:8765", "a.corp.example"):  # fmt: skip
        assert p.host_ok(ok), ok
    for bad in (
        "evil.example.com",
        "mugs.example.com.evil.net",
        "corp.example",
        "",
        None,
        "lan-box.evil.net",
    ):
        assert not p.host_ok(bad), bad
    assert p.origin_ok(None, "evil.example.com")  # not a browser: the Host check decides
    assert p.origin_ok("https://mugs.example.com", "mugs.example.com")
    assert p.origin_ok("http://10.1.2.3:8765", "10.1.2.3:8765")  # same origin
    assert p.origin_ok("http://localhost:6274", "127.0.0.1:8765")  # a local page (the inspector)
    for bad in ("https://evil.example.com", "null", "file://", "http://6.6.6.6", "chrome-extension://abc"):
        assert not p.origin_ok(bad, "127.0.0.1:8765"), bad
    anything = host_policy(public_url=None, allowed_hosts=["*"], port=None)
    assert anything.host_ok("evil.example.com") and anything.origin_ok("https://evil.example.com", "x")


def test_runpod_proxy_name_and_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_POD_ID", "Abc123xyz")
    p = host_policy(public_url=None, allowed_hosts=[], port=8765)
    assert p.host_ok("abc123xyz-8765.proxy.runpod.net")
    assert not p.host_ok("other-8765.proxy.runpod.net")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert public_base_url(settings, "0.0.0.0", 8765) == "https://abc123xyz-8765.proxy.runpod.net"
    monkeypatch.delenv("RUNPOD_POD_ID")
    assert public_base_url(settings, "0.0.0.0", 8765) is None
    assert public_base_url(settings, "127.0.0.1", 9) == "http://127.0.0.1:9"


def test_oauth_on_a_public_bind_needs_the_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNPOD_POD_ID", raising=False)
    oauth = Settings(_env_file=None, oauth_issuer="https://auth.example.com")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="public URL is unknown"):
        check_bind("streamable-http", "0.0.0.0", oauth)
    with pytest.raises(ConfigError, match="https"):
        check_bind(
            "streamable-http", "127.0.0.1", Settings(_env_file=None, oauth_issuer="http://auth.example.com")
        )  # type: ignore[call-arg]
    public = Settings(
        _env_file=None, oauth_issuer="https://auth.example.com", public_url="https://mugs.example.com/"
    )  # type: ignore[call-arg]
    check_bind("streamable-http", "0.0.0.0", public)  # an issuer alone is enough auth for a public bind
    access = build_access(public, "streamable-http", "0.0.0.0", 8765)
    assert access.resource_url == "https://mugs.example.com/mcp"
    assert access.metadata_url == "https://mugs.example.com/.well-known/oauth-protected-resource/mcp"
    assert build_access(public, "sse", "0.0.0.0", 8765).resource_url == "https://mugs.example.com/sse"


@pytest.mark.slow
def test_a_server_on_0_0_0_0_checks_hosts(tmp_path: Path) -> None:
    port = free_port()
    env = mugpos_env(tmp_path, MUGPOS_AUTH_TOKEN=TOKEN, MUGPOS_ALLOWED_HOSTS="mugpos.lan",
                     RUNPOD_POD_ID="pod42")  # fmt: skip
    auth = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json"}  # fmt: skip

    def status(host: str, **headers: str) -> int:
        r = httpx.post(
            f"http://127.0.0.1:{port}/mcp", content=INIT, headers={**auth, "Host": host, **headers}
        )
        return r.status_code

    with mugpos_server(tmp_path, env, port=port, host="0.0.0.0") as srv:
        assert status("evil.example.com") == 421  # the token does not make a rebinding request safe
        assert status(f"evil.example.com:{port}", Origin="http://evil.example.com") == 421
        assert status(f"127.0.0.1:{port}") == 200
        assert status(f"mugpos.lan:{port}") == 200
        assert status(f"pod42-{port}.proxy.runpod.net") == 200
        assert status(f"127.0.0.1:{port}", Origin="https://evil.example.com") == 403
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Host": "internal-probe"})
        assert r.status_code == 200
        assert TOKEN not in srv.log()
