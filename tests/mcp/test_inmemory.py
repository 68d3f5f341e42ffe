"""Every tool, resource and prompt through the SDK's in-memory client against a real app."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp_helpers import RULE, run_flow
from PIL import Image
from testkit import open_mcp_client

from mugpos.operations import TOOLS

pytestmark = pytest.mark.anyio

TOOL_NAMES = {
    "analyze_image",
    "suggest_position",
    "search_similar_layouts",
    "add_rule",
    "list_rules",
    "remove_rule",
    "explain_rule",
}


def _size(result: Any) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def test_tools_mirror_the_operations_table(app: Any) -> None:
    async with open_mcp_client(app) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOL_NAMES == set(TOOLS)
    for name, tool in tools.items():
        spec = TOOLS[name]
        assert set(tool.input_schema.get("properties", {})) == set(spec.args.model_fields), name
        required = {f for f, info in spec.args.model_fields.items() if info.is_required()}
        assert set(tool.input_schema.get("required", [])) == required, name
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) == set(spec.result.model_fields), name
        assert tool.description and "Use" in tool.description
        assert tool.annotations is not None
    assert tools["list_rules"].annotations.read_only_hint is True
    assert tools["remove_rule"].annotations.destructive_hint is True
    assert tools["analyze_image"].annotations.read_only_hint is False
    image = tools["analyze_image"].input_schema["properties"]["image"]
    assert "base64" in image["description"]
    assert tools["analyze_image"].input_schema["properties"]["px_per_cm"]["anyOf"][0]["exclusiveMinimum"] == 0


async def test_analyze_suggest_search_and_resources(app: Any, coffee_png: Path, test_data: Path) -> None:
    async with open_mcp_client(app) as client:
        flow = await run_flow(client, str(coffee_png))
        aid = flow["analysis_id"]
        # Progress came while the models warmed and the image was analysed, ending at 100 %.
        values = [v for v, _ in flow["progress"]]
        assert values and values == sorted(values) and values[-1] == 100.0
        assert any(m and "warming" in m for _, m in flow["progress"])

        analyzed = await client.call_tool("analyze_image", {"image": str(coffee_png), "rules": [RULE]})
        data = analyzed.structured_content
        assert _size(analyzed) < 1024 * 1024
        cup = data["mugs"][0]
        box = cup["box"]  # compact by default: the mugs' boxes, not every object's
        assert data["detail"] == "compact" and data["scene"] is None and data["object_counts"]["cup"] >= 1
        assert abs(box[0] - 170) < 25 and abs(box[2] - 424) < 25  # the cup the README documents
        assert data["scale"]["px_per_cm"] > 0
        text = [c.text for c in analyzed.content if c.type == "text"]
        assert data["analysis_id"] in text[0] and json.loads(text[1]) == data
        img = next(c for c in analyzed.content if c.type == "image")
        picture = Image.open(io.BytesIO(base64.b64decode(img.data)))
        assert max(picture.size) <= app.settings.annotated_max_side
        assert f"image/{picture.format.lower()}" == img.mime_type

        scene = json.loads((test_data / "coco-cups" / "scenes").glob("*.json").__next__().read_text())
        by_scene = await client.call_tool("suggest_position", {"scene": scene, "rules": [RULE]})
        assert not by_scene.is_error, by_scene.content
        assert by_scene.structured_content["analysis_id"] is None
        assert any(c.type == "image" for c in by_scene.content)

        found = await client.call_tool("search_similar_layouts", {"analysis_id": aid, "k": 3})
        assert not found.is_error, found.content
        hits = found.structured_content["results"]
        assert found.structured_content["total_layouts"] == 2
        assert [h["analysis_id"] for h in hits] == [data["analysis_id"]]  # the query itself is excluded

        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {
            "mugpos://rules/{rule_id}",
            "mugpos://analyses/{analysis_id}",
            "mugpos://analyses/{analysis_id}/annotated",
            "mugpos://layouts/{analysis_id}",
        }
        static = {str(r.uri) for r in (await client.list_resources()).resources}
        # ui://mugpos/desk.html is the MCP App (desk view) bound to analyze_image and suggest_position.
        assert static == {"mugpos://rules", "mugpos://status", "mugpos://vocabulary", "ui://mugpos/desk.html"}

        annotated = (await client.read_resource(f"mugpos://analyses/{aid}/annotated")).contents[0]
        assert annotated.mime_type.startswith("image/")
        Image.open(io.BytesIO(base64.b64decode(annotated.blob))).verify()
        layout = json.loads((await client.read_resource(f"mugpos://layouts/{aid}")).contents[0].text)
        assert layout["analysis_id"] == aid and "cup" in layout["labels"]
        status = json.loads((await client.read_resource("mugpos://status")).contents[0].text)
        assert status["models"]["ready"] is True and status["models"]["detector"]["warm"] is True
        vocab = json.loads((await client.read_resource("mugpos://vocabulary")).contents[0].text)
        assert "cup" in vocab["objects"] and "in" in vocab["units"] and vocab["rule_forms"]
        assert vocab["words"]["laptop"]["labels"] == ["laptop"] and "properties" in vocab["rule_schema"]
        with pytest.raises(MCPError) as missing:
            await client.read_resource("mugpos://analyses/a-19700101-nothing")
        assert "no stored analysis" in str(missing.value)


async def test_rule_management(mcp_client: Any) -> None:
    explained = await mcp_client.call_tool("explain_rule", {"text": RULE})
    assert explained.structured_content["understood"] is True
    assert "15.24" in explained.structured_content["interpretation"]

    added = (
        await mcp_client.call_tool("add_rule", {"text": RULE, "severity": "critical"})
    ).structured_content
    assert added["severity"] == "critical" and "15.24" in added["interpretation"]
    listed = await mcp_client.call_tool("list_rules", {})
    assert [r["id"] for r in listed.structured_content["rules"]] == [added["id"]]
    assert added["id"] in listed.content[0].text

    one = json.loads((await mcp_client.read_resource(f"mugpos://rules/{added['id']}")).contents[0].text)
    assert one["text"] == RULE
    every = json.loads((await mcp_client.read_resource("mugpos://rules")).contents[0].text)
    assert [r["id"] for r in every["rules"]] == [added["id"]]

    removed = await mcp_client.call_tool("remove_rule", {"rule_id": added["id"]})
    assert removed.structured_content == {"id": added["id"], "removed": True}
    again = await mcp_client.call_tool("remove_rule", {"rule_id": added["id"]})
    assert again.is_error
    assert "not_found" in again.content[0].text and "list_rules" in again.content[0].text


async def test_errors_are_actionable_and_leak_nothing(app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    async with open_mcp_client(app) as client:
        outside = await client.call_tool("analyze_image", {"image": "/etc/hostname"})
        assert outside.is_error and "Traceback" not in outside.content[0].text
        assert "MUGPOS_ALLOWED_DIRS" in outside.content[0].text and "Hint:" in outside.content[0].text

        garbled = await client.call_tool("add_rule", {"text": "make the mugs feel purple on tuesdays"})
        assert garbled.is_error
        assert "rule_not_understood" in garbled.content[0].text
        assert "Nearest supported phrasings:\n- " in garbled.content[0].text

        both = await client.call_tool("suggest_position", {"analysis_id": "x", "image": "y"})
        assert both.is_error and "exactly one" in both.content[0].text

        missing_arg = await client.call_tool("analyze_image", {})
        assert missing_arg.is_error and "image" in missing_arg.content[0].text

        async def broken() -> None:
            raise RuntimeError("secret connection string mongodb://user:pw@host")

        monkeypatch.setattr(app, "list_rules", broken)
        crashed = await client.call_tool("list_rules", {})
        assert crashed.is_error
        assert crashed.content[0].text.startswith("internal error (id ")
        assert "mongodb" not in crashed.content[0].text and "Traceback" not in crashed.content[0].text


async def test_cancellation_stops_the_operation(app: Any, coffee_png: Path, monkeypatch: Any) -> None:
    started, cancelled = anyio.Event(), anyio.Event()

    async def slow_analyze(*args: Any, **kwargs: Any) -> Any:
        started.set()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    monkeypatch.setattr(app.engine, "analyze", slow_analyze)
    async with open_mcp_client(app) as client:
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "analyze_image", {"image": str(coffee_png)})
                await started.wait()
                tg.cancel_scope.cancel()
        with anyio.fail_after(5):
            await cancelled.wait()
        assert started.is_set()
        listed = await client.call_tool("list_rules", {})  # the server is still serving
        assert not listed.is_error


async def test_prompts_steer_through_the_tools(mcp_client: Any) -> None:
    prompts = {p.name: p for p in (await mcp_client.list_prompts()).prompts}
    assert {"review_my_desk", "set_up_workspace_rules"} <= set(prompts)
    assert [a.name for a in prompts["review_my_desk"].arguments] == ["image"]
    review = await mcp_client.get_prompt("review_my_desk", {"image": "desk.jpg"})
    text = review.messages[0].content.text
    assert "desk.jpg" in text and "analyze_image" in text and "suggest_position" in text
    rules = await mcp_client.get_prompt("set_up_workspace_rules", {"workspace": "standing desk"})
    text = rules.messages[0].content.text
    assert "standing desk" in text and "explain_rule" in text and "add_rule" in text
