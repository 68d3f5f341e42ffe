"""/dashboard in a real browser: Playwright driving Debian's Chromium against a guarded server.

The page is opened first; then an analysis and a suggestion are made over MCP, and both must
appear on the open page within seconds without a reload (server-sent events), with the annotated
picture loaded and the verdicts shown. A screenshot is kept as a test artifact: under
$MUGPOS_ARTIFACTS when set (CI keeps that folder), else in pytest's tmp dir; its path is printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from operator_helpers import TOKEN, mcp_client
from testkit import chromium_path

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def artifact_dir(tmp_path: Path) -> Path:
    where = Path(os.environ["MUGPOS_ARTIFACTS"]) if os.environ.get("MUGPOS_ARTIFACTS") else tmp_path
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_data_needs_the_token_and_the_shell_does_not(server: str) -> None:
    assert httpx.get(f"{server}/dashboard/").status_code == 200  # the same bytes as in the wheel
    assert httpx.get(f"{server}/dashboard/static/app.js").status_code == 200
    for path in ("/dashboard/state", "/dashboard/events", "/dashboard/pictures/1", "/metrics"):
        assert httpx.get(f"{server}{path}").status_code == 401, path
        assert httpx.get(f"{server}{path}", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(f"{server}/dashboard/state", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "models" in ok.json()


async def test_analysis_over_mcp_appears_on_open_dashboard(
    server: str, coffee_png: Path, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            # A phone-sized window: the page must stay readable there.
            context = await browser.new_context(viewport={"width": 420, "height": 900})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # The token travels in the fragment (never sent to the server) and then as a header.
            await page.goto(f"{server}/dashboard#token={TOKEN}")
            assert page.url.endswith("/dashboard/"), page.url  # the fragment is dropped from the URL
            await page.wait_for_selector("#conn.on", timeout=15_000)
            assert await page.locator("#recent li").count() == 0

            async with mcp_client(server) as client:
                done = await client.call_tool(
                    "analyze_image",
                    {"image": str(coffee_png), "rules": ["keep mugs at least 5 cm from the table edge"]},
                )
                assert not done.is_error, done.content
                aid = done.structured_content["analysis_id"]
                item = page.locator(f'#recent li[data-analysis-id="{aid}"]')
                await item.wait_for(timeout=10_000)  # pushed, not polled: no reload happens
                await page.wait_for_function(
                    "id => { const i = document.querySelector(`#recent li[data-analysis-id='${id}'] img`);"
                    " return i && i.complete && i.naturalWidth > 0; }",
                    arg=aid,
                    timeout=10_000,
                )
                text = await item.inner_text()
                assert "1 mug" in text and "cup-1" in text
                assert "5 cm" in text or "table edge" in text  # the verdict of the given rule

                moved = await client.call_tool(
                    "suggest_position", {"analysis_id": aid, "rules": ["keep mugs in the left half"]}
                )
                assert not moved.is_error, moved.content
                await page.locator("#recent li.suggestion").first.wait_for(timeout=10_000)

            # The status tick (every 2 s) brings the models, the latency table and the call counts.
            await page.wait_for_function(
                "document.querySelector('#models').textContent === 'warm'"
                " && document.querySelectorAll('#latency tbody tr').length >= 3"
                " && document.querySelector('#calls').textContent.includes('suggest_position 1')",
                timeout=10_000,
            )
            assert "analyze_image 1" in (await page.locator("#calls").text_content() or "")
            shot = artifact_dir(tmp_path) / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"\ndashboard screenshot: {shot}")
            assert not errors, errors
        finally:
            await browser.close()
