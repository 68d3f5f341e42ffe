"""What an assistant pays for a result, through the SDK's client: compact by default, full on request.

The busy photo is the COCO photo with the most labelled objects; at confidence 0.1 the small int8
test detector finds 30+ objects there (as full-size weights do at the default 0.25). Ten rules are
saved. Sizes are bytes of the JSON a client receives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mugpos.mcp_server import build_server
from mugpos.settings import Settings

pytestmark = pytest.mark.anyio

TEN_RULES = [
    "Keep mugs at least 6 inches away from laptops",
    "Keep mugs at least 10 cm from the table edge",
    "Keep mugs at least 5 cm apart",
    "Keep drinks and electronics separated by at least 20cm",
    "Keep cups on the left-hand side of the desk",
    "Keep mugs in the front half of the workspace",
    "Cluster mugs within 12 inches of each other for easy access",
    "Keep mugs within 30 cm of the keyboard",
    "Maintain a minimum distance of 8 inches between beverages and keyboards",
    "Ensure drinks are no closer than 4 inches to the edge of the table",
]
COMPACT_MAX = 6 * 1024


def busiest(test_data: Path) -> Path:
    labels = (test_data / "coco-cups" / "labels").glob("*.txt")
    top = max(labels, key=lambda p: len(p.read_text().splitlines()))
    return test_data / "coco-cups" / "images" / f"{top.stem}.jpg"


def nbytes(structured: Any) -> int:
    return len(json.dumps(structured, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.fixture
async def busy_client(tmp_path: Path, onnx_weights: Path, test_data: Path) -> AsyncIterator[Client]:
    from mugpos.operations import Mugpos

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        detector_weights=str(onnx_weights),
        embedder="none",
        confidence=0.1,
        data_dir=tmp_path / "data",
        allowed_dirs=[test_data],
        threads=2,
    )
    app = Mugpos(settings)
    try:
        async with Client(build_server(app)) as client:
            for text in TEN_RULES:
                assert not (await client.call_tool("add_rule", {"text": text})).is_error
            yield client
    finally:
        await app.aclose()


@pytest.mark.slow
async def test_busy_photo_is_compact_by_default_and_full_on_request(
    busy_client: Client, test_data: Path
) -> None:
    photo = str(busiest(test_data))
    compact = await busy_client.call_tool("analyze_image", {"image": photo})
    assert not compact.is_error, compact.content
    data = compact.structured_content
    assert sum(data["object_counts"].values()) >= 30 and len(data["rules"]) == 10
    assert data["detail"] == "compact" and data["scene"] is None
    assert nbytes(data) <= COMPACT_MAX, nbytes(data)
    summary, as_json = (c.text for c in compact.content if c.type == "text")
    assert len(summary.encode()) <= 1024 and json.loads(as_json) == data
    assert all(not r["measurements"] for r in data["rules"]) and data["omitted"]["relations"] > 0
    assert data["mugs"] and all("edges_cm" in m for m in data["mugs"])

    full = await busy_client.call_tool("analyze_image", {"image": photo, "detail": "full"})
    fd = full.structured_content
    assert fd["detail"] == "full" and len(fd["scene"]["objects"]) >= 30 and nbytes(fd) > 2 * nbytes(data)
    stored = (await busy_client.read_resource(f"mugpos://analyses/{data['analysis_id']}")).contents[0]
    stored_doc = json.loads(stored.text)
    assert stored_doc["detail"] == "full" and len(stored_doc["scene"]["objects"]) >= 30

    sugg = await busy_client.call_tool("suggest_position", {"analysis_id": data["analysis_id"]})
    assert not sugg.is_error, sugg.content
    assert sugg.structured_content["detail"] == "compact" and nbytes(sugg.structured_content) <= COMPACT_MAX
    sugg_full = await busy_client.call_tool(
        "suggest_position", {"analysis_id": data["analysis_id"], "detail": "full"}
    )
    assert nbytes(sugg_full.structured_content) > nbytes(sugg.structured_content)

    rules = await busy_client.call_tool("list_rules", {})
    rules_full = await busy_client.call_tool("list_rules", {"detail": "full"})
    assert len(rules.structured_content["rules"]) == 10 and nbytes(rules.structured_content) <= 3 * 1024
    assert all(r["rule"] is None for r in rules.structured_content["rules"])
    assert all(r["rule"]["relation"] for r in rules_full.structured_content["rules"])


async def test_every_argument_is_described_with_an_example_and_unknown_keys_are_refused(
    busy_client: Client,
) -> None:
    tools = {t.name: t for t in (await busy_client.list_tools()).tools}
    assert len(tools) == 7
    for name, tool in tools.items():
        schema = tool.input_schema
        assert schema.get("additionalProperties") is False, name
        for arg, prop in schema["properties"].items():
            text = prop.get("description", "")
            assert len(text) > 30 and ("e.g." in text or "E.g." in text or "'" in text), (name, arg, text)
    assert (
        "pixels per centimetre"
        in tools["analyze_image"].input_schema["properties"]["px_per_cm"]["description"]
    )
    rule_schema = json.dumps(tools["add_rule"].input_schema)
    assert '"relation"' in rule_schema and '"threshold_cm"' in rule_schema  # the Rule schema, typed

    bad = await busy_client.call_tool("analyze_image", {"image": "x.jpg", "colour": "red"})
    assert bad.is_error and "'colour'" in bad.content[0].text and "px_per_cm" in bad.content[0].text
    bad = await busy_client.call_tool(
        "search_similar_layouts", {"analysis_id": "a-x", "filters": {"labels": ["laptop"]}}
    )
    text = bad.content[0].text
    assert bad.is_error and "unknown filter key 'labels'" in text and "labels_all" in text


async def test_text_search_without_an_embedder_is_refused_at_once(tmp_path: Path) -> None:
    from mugpos.operations import Mugpos

    app = Mugpos(Settings(_env_file=None, embedder="none", data_dir=tmp_path, detector_weights="nope.onnx"))  # type: ignore[call-arg]
    try:
        async with Client(build_server(app)) as client:
            res = await client.call_tool("search_similar_layouts", {"text": "laptop with a mug on the right"})
        assert res.is_error and "MUGPOS_EMBEDDER" in res.content[0].text
        assert app.engine._loader is None  # refused before any model was asked to load
    finally:
        await app.aclose()
