"""Helpers for the MCP tests: the flow every transport must carry (servers come from testkit)."""

from __future__ import annotations

import time

from testkit import REPO, child_env, free_port, http_server

__all__ = ["REPO", "RULE", "child_env", "free_port", "http_server", "run_flow"]

RULE = "Keep mugs at least 6 inches away from laptops"


async def run_flow(client: object, image: str) -> dict[str, object]:
    """What every transport must carry: analyse, add a rule, suggest for the stored analysis, read it back."""
    import json

    from mcp import Client

    assert isinstance(client, Client)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    t0 = time.perf_counter()
    analyzed = await client.call_tool("analyze_image", {"image": image}, progress_callback=on_progress)
    analyze_s = time.perf_counter() - t0
    assert not analyzed.is_error, analyzed.content
    result = analyzed.structured_content
    assert result is not None
    assert [m["object_id"] for m in result["mugs"]] and result["mugs"][0]["object_id"].startswith("cup")
    images = [c for c in analyzed.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type.startswith("image/")
    aid = result["analysis_id"]

    added = await client.call_tool("add_rule", {"text": RULE})
    assert not added.is_error, added.content
    rule_id = added.structured_content["id"]

    suggested = await client.call_tool("suggest_position", {"analysis_id": aid})
    assert not suggested.is_error, suggested.content
    assert suggested.structured_content["analysis_id"] == aid
    assert any(r["text"] == RULE for r in suggested.structured_content["rules"])

    read = await client.read_resource(f"mugpos://analyses/{aid}")
    stored = json.loads(read.contents[0].text)
    assert stored["analysis_id"] == aid and stored["mugs"] == result["mugs"]
    return {"analysis_id": aid, "rule_id": rule_id, "analyze_s": analyze_s, "progress": progress}
