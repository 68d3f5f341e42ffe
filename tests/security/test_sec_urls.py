"""Image URLs: only public addresses, after DNS and on every redirect, through a real MCP tool call.

A real web server on loopback serves a real image at every address tried here, and records each
request: a refusal must come before any byte is sent to the private address.
"""

from __future__ import annotations

import ipaddress

import pytest
from tests_security_support import png_bytes

from mugpos.engine import images

pytestmark = pytest.mark.anyio

PNG = png_bytes()
IMAGE = (200, {"Content-Type": "image/png"}, PNG)


def _private_urls(port: int) -> dict[str, str]:
    return {
        "loopback v4": f"http://127.0.0.1:{port}/img.png",
        "localhost name": f"http://localhost:{port}/img.png",
        "loopback v6": f"http://[::1]:{port}/img.png",
        "v4-mapped v6": f"http://[::ffff:127.0.0.1]:{port}/img.png",
        "decimal ip": f"http://2130706433:{port}/img.png",
        "short dotted ip": f"http://127.1:{port}/img.png",
        "unspecified": f"http://0.0.0.0:{port}/img.png",
        "private 10/8": "http://10.20.30.40/img.png",
        "private 172.16/12": "http://172.16.5.4/img.png",
        "private 192.168/16": "http://192.168.1.1/img.png",
        "carrier-grade nat": "http://100.64.0.1/img.png",
        "link-local": "http://169.254.10.10/img.png",
        "aws/gcp/azure metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "metadata with creds and port": "http://user:pw@169.254.169.254:80/computeMetadata/v1/",
        "ecs metadata": "http://169.254.170.2/v2/credentials",
        "aws v6 metadata": "http://[fd00:ec2::254]/latest/meta-data/",
        "v6 link-local": "http://[fe80::1]/img.png",
        "v6 unique-local": "http://[fd12:3456::1]/img.png",
        "nat64 of loopback": "http://[64:ff9b::7f00:1]/img.png",
        "https loopback": f"https://127.0.0.1:{port}/img.png",
    }


async def test_urls_to_non_public_addresses_are_refused(mcp_factory, web_hosts) -> None:
    web, _ = web_hosts
    web.routes["/img.png"] = IMAGE
    port = int(web.base.rsplit(":", 1)[1])
    async with mcp_factory() as mcp:
        for name, url in _private_urls(port).items():
            ans = await mcp.call("analyze_image", image=url, use_saved_rules=False)
            assert ans.is_error, f"{name}: {url} was fetched"
            assert ans.code == "url_not_allowed", f"{name}: {ans.text}"
    assert sum(web.hits.values()) == 0, f"the private host was contacted: {web.hits}"


async def test_allow_private_urls_is_the_only_way_in(mcp_factory, web_hosts) -> None:
    """Positive control: with the trusted-LAN switch on, the same URL is fetched and analyzed."""
    web, _ = web_hosts
    web.routes["/img.png"] = IMAGE
    async with mcp_factory(allow_private_urls=True) as mcp:
        ans = await mcp.call("analyze_image", image=web.url("/img.png"), use_saved_rules=False)
    assert not ans.is_error, ans.text
    assert web.hits["/img.png"] == 1


@pytest.fixture
def public_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Play 127.0.0.2 as a public web host; every other address keeps the real check."""
    real = images.is_public_address
    public = ipaddress.ip_address("127.0.0.2")
    monkeypatch.setattr(images, "is_public_address", lambda ip: ip == public or real(ip))


async def test_redirect_to_private_address_is_refused(mcp_factory, web_hosts, public_127_0_0_2) -> None:
    private, public = web_hosts
    private.routes["/secret.png"] = IMAGE
    private_port = int(private.base.rsplit(":", 1)[1])
    public.routes["/direct.png"] = IMAGE
    targets = {
        "/to-loopback": f"http://127.0.0.1:{private_port}/secret.png",
        "/to-localhost": f"http://localhost:{private_port}/secret.png",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/",
        "/to-private": "http://10.0.0.1/secret.png",
        "/to-v6-loopback": f"http://[::1]:{private_port}/secret.png",
    }
    for path, location in targets.items():
        public.routes[path] = (302, {"Location": location}, b"")
    # two hops: public -> public -> private
    public.routes["/hop1"] = (307, {"Location": "/to-loopback"}, b"")
    public.routes["/to-file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    async with mcp_factory() as mcp:
        ok = await mcp.call("analyze_image", image=public.url("/direct.png"), use_saved_rules=False)
        assert not ok.is_error, f"the first hop itself must be allowed: {ok.text}"
        for path in [*targets, "/hop1"]:
            ans = await mcp.call("analyze_image", image=public.url(path), use_saved_rules=False)
            assert ans.is_error and ans.code == "url_not_allowed", f"{path}: {ans.text}"
        ans = await mcp.call("analyze_image", image=public.url("/to-file"), use_saved_rules=False)
        assert ans.is_error and ans.code == "unsupported_scheme", ans.text
    assert private.hits["/secret.png"] == 0, "a redirect reached the private host"
    assert public.hits["/to-loopback"] == 2 and public.hits["/hop1"] == 1


async def test_redirect_loops_and_oversized_bodies_stop(mcp_factory, web_hosts, public_127_0_0_2) -> None:
    _, public = web_hosts
    public.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    public.routes["/big.png"] = (200, {"Content-Type": "image/png"}, PNG + b"\0" * 300_000)
    public.routes["/page"] = (200, {"Content-Type": "text/html"}, b"<html>hi</html>")
    async with mcp_factory(max_image_bytes=100_000, url_max_redirects=3) as mcp:
        loop = await mcp.call("analyze_image", image=public.url("/loop"), use_saved_rules=False)
        big = await mcp.call("analyze_image", image=public.url("/big.png"), use_saved_rules=False)
        page = await mcp.call("analyze_image", image=public.url("/page"), use_saved_rules=False)
    assert loop.is_error and loop.code == "too_many_redirects", loop.text
    assert public.hits["/loop"] == 4  # the first request and three redirects, then stop
    assert big.is_error and big.code == "image_too_large", big.text
    assert page.is_error and page.code == "not_an_image", page.text


async def test_other_schemes_are_refused(mcp_factory) -> None:
    async with mcp_factory() as mcp:
        for url in ("ftp://example.com/a.png", "gopher://127.0.0.1:70/", "dict://127.0.0.1:6379/info",
                    "ldap://127.0.0.1/", "jar:http://x/a.png!/"):  # fmt: skip
            ans = await mcp.call("analyze_image", image=url, use_saved_rules=False)
            assert ans.is_error and ans.code in {"unsupported_scheme", "path_not_allowed"}, (
                f"{url}: {ans.text}"
            )
