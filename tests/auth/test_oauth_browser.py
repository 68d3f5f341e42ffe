"""The interactive OAuth flow a connector uses: dynamic client registration, authorization code with
PKCE and a resource indicator, a person signing in, then MCP calls with the token.

The MCP SDK's own `OAuthClientProvider` drives it from the server's 401; headless Chromium (Debian's,
through Playwright) plays the person on oidc-provider's login and consent pages; the redirect back
to the client is caught in the browser, as a desktop client's loopback listener would.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests_auth_support import BOTH, MemoryTokens, MugposServer, OidcServer, claims_of

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
CALLBACK = "http://127.0.0.1:33418/callback"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    """Opens the authorization URL, signs in, consents, and hands back the redirect's parameters."""

    def __init__(self) -> None:
        self.redirect: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pages: list[str] = []

    async def open(self, authorization_url: str) -> None:
        from playwright.async_api import async_playwright

        assert "code_challenge_method=S256" in authorization_url and "resource=" in authorization_url
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page()

            async def caught(route: Any) -> None:
                if not self.redirect.done():
                    self.redirect.set_result(route.request.url)
                await route.fulfill(status=200, body="signed in; you can close this window")

            await page.route(CALLBACK + "*", caught)
            await page.goto(authorization_url)
            self.pages.append(await page.title())
            await page.fill("input[name=login]", "alice")
            await page.fill("input[name=password]", "any password")
            await page.click("button[type=submit]")
            await page.wait_for_load_state()
            if not self.redirect.done():  # the consent page: "Continue"
                self.pages.append(await page.title())
                await page.click("button[type=submit]")
            await asyncio.wait_for(asyncio.shield(self.redirect), 30)
            await browser.close()

    async def callback(self) -> Any:
        from mcp.client.auth import AuthorizationCodeResult

        query = parse_qs(urlsplit(await self.redirect).query)
        assert "error" not in query, query
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0],
                                       iss=query.get("iss", [None])[0])  # fmt: skip


async def test_authorization_code_with_pkce_and_registration(
    server: MugposServer, oidc: OidcServer, resource: str
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (.ci/run installs Debian's)")
    import httpx2
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata

    browser = Browser()
    storage = MemoryTokens()
    auth = OAuthClientProvider(
        server_url=resource,
        client_metadata=OAuthClientMetadata(
            client_name="mugpos browser test",
            redirect_uris=[CALLBACK],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=BOTH,
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=120) as http,
        Client(streamable_http_client(resource, http_client=http)) as client,
    ):
        added = await client.call_tool("add_rule", {"text": "keep mugs at least 10 cm from laptops"})
        assert not added.is_error, added.content
    assert storage.client is not None and storage.client.client_id  # registered dynamically
    assert oidc.hits("/reg") == 1
    claims = claims_of(storage.tokens.access_token)
    assert claims["aud"] == resource and claims["iss"] == oidc.issuer and claims["sub"] == "alice"
    assert set(claims["scope"].split()) == {"mugpos:read", "mugpos:write"}
