"""The desk view (MCP Apps): its `_meta.ui`, its resource, and the page itself in a real host bridge.

The page runs in headless Chromium inside a minimal host page built on the official AppBridge from
npm `@modelcontextprotocol/ext-apps` (bundled here with esbuild; CI installs both with
`npm_tool ext-apps`, found through MUGPOS_NPM_EXT_APPS). The host forwards the view's `tools/call`
and `resources/read` to the real mugpos server over an in-memory MCP client, so the re-check after
a drag is a real `suggest_position` call. Hosts without Apps get exactly the result they got before.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from testkit import chromium_path, open_mcp_client

from mugpos.mcp_server.desk_app import DESK_URI, UI_TOOLS
from mugpos.scene.model import Scene

pytestmark = pytest.mark.anyio
HOST_DIR = Path(__file__).parent / "apps_host"
RULE = "keep mugs in the left half of the image"


async def test_tools_carry_the_desk_view_and_the_resource_is_an_app(mcp_client: Any) -> None:
    tools = {t.name: t for t in (await mcp_client.list_tools()).tools}
    for name, tool in tools.items():
        ui = (tool.meta or {}).get("ui")
        if name in UI_TOOLS:
            assert ui == {"resourceUri": DESK_URI}, name
        else:
            assert ui is None, name
    listed = [r for r in (await mcp_client.list_resources()).resources if str(r.uri) == DESK_URI]
    assert len(listed) == 1 and listed[0].mime_type == "text/html;profile=mcp-app"
    read = await mcp_client.read_resource(DESK_URI)
    page = read.contents[0]
    assert page.mime_type == "text/html;profile=mcp-app"
    assert "ui/initialize" in page.text and "<script" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")  # no CDN, nothing fetched


@pytest.mark.slow
async def test_result_without_apps_is_unchanged(app: Any, coffee_png: Path) -> None:
    """A client that never negotiated Apps gets the same content as before: headline, JSON, picture."""
    async with open_mcp_client(app) as client:
        done = await client.call_tool("analyze_image", {"image": str(coffee_png)})
    assert not done.is_error
    assert [c.type for c in done.content] == ["text", "text", "image"]
    assert json.loads(done.content[1].text) == done.structured_content
    assert done.meta is None or "ui" not in done.meta


def ext_apps_prefix() -> Path:
    candidate = os.environ.get("MUGPOS_NPM_EXT_APPS")
    if candidate and (Path(candidate) / "node_modules/@modelcontextprotocol/ext-apps").is_dir():
        return Path(candidate)
    pytest.skip(
        "npm @modelcontextprotocol/ext-apps not installed (.ci/run: npm_tool ext-apps; MUGPOS_NPM_EXT_APPS)"
    )
    raise AssertionError


def bundle_bridge(out: Path) -> Path:
    """The official AppBridge as one browser module (esbuild, run where the npm packages are)."""
    prefix = ext_apps_prefix()
    esbuild = prefix / "node_modules/.bin/esbuild"
    if not esbuild.exists():
        pytest.skip("esbuild not installed beside ext-apps (.ci/run: npm_tool ext-apps ... esbuild)")
    entry = 'export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";\n'
    target = out / "bridge.js"
    subprocess.run(
        [str(esbuild), "--bundle", "--format=esm", f"--outfile={target}", "--log-level=warning"],
        input=entry.encode(),
        cwd=prefix,
        check=True,
        timeout=120,
    )
    return target


def dump(result: Any) -> dict[str, Any]:
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.slow
async def test_desk_view_in_a_real_apps_host(app: Any, coffee_png: Path, tmp_path: Path) -> None:
    from playwright.async_api import Route, async_playwright

    bridge = bundle_bridge(tmp_path)
    async with open_mcp_client(app) as client:
        html = (await client.read_resource(DESK_URI)).contents[0].text
        arguments = {"image": str(coffee_png), "rules": [RULE]}
        done = await client.call_tool("analyze_image", arguments)
        assert not done.is_error, done.content
        assert any(v["status"] == "violated" for v in done.structured_content["rules"])  # cup at center
        aid = done.structured_content["analysis_id"]
        setup = {"html": html, "arguments": arguments, "result": dump(done)}
        files = {
            "host.html": ((HOST_DIR / "host.html").read_bytes(), "text/html"),
            "bridge.js": (bridge.read_bytes(), "text/javascript"),
            "setup.json": (json.dumps(setup).encode(), "application/json"),
        }
        calls: list[dict[str, Any]] = []

        answers: list[dict[str, Any]] = []

        async def call_tool(params: dict[str, Any]) -> dict[str, Any]:
            calls.append(params)
            answers.append(dump(await client.call_tool(params["name"], params.get("arguments") or {})))
            return answers[-1]

        async def read_resource(params: dict[str, Any]) -> dict[str, Any]:
            return dump(await client.read_resource(params["uri"]))

        async def serve(route: Route) -> None:
            name = route.request.url.rsplit("/", 1)[-1]
            body, mime = files[name]
            await route.fulfill(body=body, content_type=mime)

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
            try:
                page = await browser.new_page(viewport={"width": 800, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.expose_function("pyCallTool", call_tool)
                await page.expose_function("pyReadResource", read_resource)
                await page.route("http://host.test/**", serve)
                await page.goto("http://host.test/host.html")
                await page.wait_for_function(
                    "document.getElementById('status').textContent.includes('mugpos-desk')", timeout=60_000
                )
                view = page.frame_locator("iframe")
                await view.locator("#photo").wait_for(timeout=60_000)
                assert "violated" in await view.locator("#verdicts").inner_text()
                assert RULE in await view.locator("#verdicts").inner_text()
                # The view asked the host for the suggested target through suggest_position.
                target = view.locator('rect.target[data-suggested="yes"]')
                await target.wait_for(timeout=60_000)
                assert calls and calls[0]["name"] == "suggest_position"
                assert calls[0]["arguments"]["analysis_id"] == done.structured_content["analysis_id"]
                assert "left" in await view.locator("#moves").inner_text()

                # Drag the target to the left quarter of the photo (staying inside the view) and let go.
                box, photo = await target.bounding_box(), await view.locator("#photo").bounding_box()
                assert box is not None and photo is not None
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                goal = photo["x"] + photo["width"] * 0.2
                await page.mouse.move(x, y)
                await page.mouse.down()
                for step in range(1, 11):
                    await page.mouse.move(x + (goal - x) * step / 10, y, steps=2)
                await page.mouse.up()
                frame = page.frames[1]
                try:
                    await frame.wait_for_function("document.body.dataset.rechecked === '1'", timeout=60_000)
                except Exception:
                    where = await view.locator("#recheck-where").text_content()
                    raise AssertionError(
                        f"no re-check: {where!r}; calls {[c['name'] for c in calls]}"
                    ) from None
                recheck = calls[-1]
                assert recheck["name"] == "suggest_position" and "scene" in recheck["arguments"]
                assert recheck["arguments"]["rules"] == [RULE]
                moved = {o["id"]: tuple(o["box"]) for o in recheck["arguments"]["scene"]["objects"]}
                # analyze_image is compact (no scene): the view read the stored analysis, so do we.
                stored = json.loads((await client.read_resource(f"mugpos://analyses/{aid}")).contents[0].text)
                before = {o.id: tuple(o.box) for o in Scene.model_validate(stored["scene"]).objects}
                assert moved["cup-1"][0] < before["cup-1"][0] - 100  # dragged left, in image pixels
                assert moved["dining-table-1"] == before["dining-table-1"]  # nothing else moved
                # The view shows what the tool answered for the new place (satisfied, or uncertain
                # when the measurement's range straddles the half-way line).
                verdict = answers[-1]["structuredContent"]["rules"][0]
                assert verdict["text"] == RULE and verdict["status"] in ("satisfied", "uncertain")
                at_new_place = await view.locator("#recheck").inner_text()
                assert verdict["status"].replace("_", " ") in at_new_place and RULE in at_new_place
                await view.locator("#tell").click()
                await page.wait_for_function("window.__messages.length === 1", timeout=20_000)
                message = await page.evaluate("window.__messages[0]")
                assert message["role"] == "user" and "cup-1" in message["content"][0]["text"]

                shot = Path(os.environ.get("MUGPOS_ARTIFACTS") or tmp_path) / "desk-app.png"
                shot.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(shot), full_page=True)
                print(f"\ndesk app screenshot: {shot}")
                assert not errors, errors
            finally:
                await browser.close()
