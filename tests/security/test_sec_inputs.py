"""Hostile payloads through real MCP tool calls: each refused early with a clear error.

Decompression bombs, huge base64, deeply nested or oversized scene JSON and absurd rule text.
"""

from __future__ import annotations

import base64
import resource

import pytest
from tests_security_support import png_bomb, png_bytes

pytestmark = pytest.mark.anyio
RULE_CODES = {"rule_not_understood", "rule_too_long"}
RULE = "keep mugs at least 6 inches from laptops"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_decompression_bomb_is_refused_before_decoding(mcp_factory, folders) -> None:
    bomb = png_bomb(40_000)
    assert len(bomb) < 1_000_000  # small on the wire, 200 MB (1.6 G pixels) once decoded
    (folders.allowed / "bomb.png").write_bytes(bomb)
    peak_before = _rss_mb()
    async with mcp_factory() as mcp:
        for ref in (str(folders.allowed / "bomb.png"), base64.b64encode(bomb).decode(),
                    "data:image/png;base64," + base64.b64encode(bomb).decode()):  # fmt: skip
            ans = await mcp.call("analyze_image", image=ref, use_saved_rules=False)
            assert ans.is_error and ans.code == "image_too_large", ans.text[:300]
            assert "40,000" in ans.text or "40000" in ans.text, "the error says how big it claimed to be"
    # A decoded bomb would have pushed the peak up by ~200 MB (1 bit a pixel; 4.8 GB as RGB).
    assert _rss_mb() - peak_before < 150


async def test_one_side_too_long_is_refused(mcp_factory) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (20_000, 2), 0).save(buf, "PNG")  # few pixels, absurd side
    async with mcp_factory() as mcp:
        ans = await mcp.call(
            "analyze_image", image=base64.b64encode(buf.getvalue()).decode(), use_saved_rules=False
        )
    assert ans.is_error and ans.code == "image_too_large", ans.text


async def test_huge_base64_is_refused_by_length(mcp_factory) -> None:
    limit = 256 * 1024
    payload = base64.b64encode(png_bytes() + b"\0" * (2 * limit)).decode()
    async with mcp_factory(max_image_bytes=limit) as mcp:
        raw = await mcp.call("analyze_image", image=payload, use_saved_rules=False)
        uri = await mcp.call("analyze_image", image="data:image/png;base64," + payload, use_saved_rules=False)
        # not even valid base64: refused on its length alone, before decoding is tried
        junk = await mcp.call("analyze_image", image="A" * (8 * limit) + "!!", use_saved_rules=False)
        search = await mcp.call("search_similar_layouts", image=payload)
    for ans in (raw, uri, search):
        assert ans.is_error and ans.code == "image_too_large", ans.text[:300]
    assert junk.is_error and junk.code in {"image_too_large", "bad_base64"}, junk.text[:300]
    assert len(raw.text) < 2000, "the error must not echo the payload"


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


async def test_deeply_nested_and_oversized_scenes_are_refused(mcp_factory) -> None:
    cup = {"label": "cup", "box": [10, 10, 50, 50]}
    too_many = [{"label": "cup", "box": [i, 0, i + 1, 1]} for i in range(600)]  # limit: 500
    way_too_many = [{"label": "cup", "box": [i, 0, i + 1, 1]} for i in range(6000)]
    cases = {
        "nested in a box": {"image": {"width": 100, "height": 100}, "objects": [{"label": "cup", "box": _nested(120)}]},
        "too many objects": {"image": {"width": 100_000, "height": 10}, "objects": too_many},
        "far too many objects": {"image": {"width": 100_000, "height": 10}, "objects": way_too_many},
        "huge label": {"image": {"width": 100, "height": 100}, "objects": [{"label": "x" * 100_000, "box": [1, 1, 2, 2]}]},
        "absurd size": {"image": {"width": 10**12, "height": 10**12}, "objects": [cup]},
        "nan box": {"image": {"width": 100, "height": 100}, "objects": [{"label": "cup", "box": [float("nan"), 0, 1, 1]}]},
        "not a scene": ["x"] * 1000,
    }  # fmt: skip
    async with mcp_factory() as mcp:
        ok = await mcp.call("suggest_position", scene={"image": {"width": 100, "height": 100}, "objects": [cup]},
                            rules=[RULE], use_saved_rules=False)  # fmt: skip
        assert not ok.is_error, f"control: a small valid scene works: {ok.text}"
        # Extra keys in "image" are allowed by design (a client's own metadata); nesting is bounded by
        # the JSON parser and the body limit (see test_sec_http), and it must not break anything.
        nested = {"image": {"width": 100, "height": 100, "extra": _nested(120)}, "objects": [cup]}
        ans = await mcp.call("suggest_position", scene=nested, rules=[RULE], use_saved_rules=False)
        assert not ans.is_error and "internal error" not in ans.text, ans.text[:300]
        for name, scene in cases.items():
            ans = await mcp.call("suggest_position", scene=scene, rules=[RULE], use_saved_rules=False)
            assert ans.is_error, f"{name} was accepted"
            # refused as a scene: by the SDK's argument check or by mugpos's own, never as anything else
            assert ans.code in {"bad_scene", "bad_arguments"} or "validation error" in ans.text, ans.text[
                :300
            ]
            assert "internal error" not in ans.text, f"{name}: {ans.text[:300]}"
            assert len(ans.text) < 4000, f"{name}: the error echoes the payload ({len(ans.text)} chars)"


async def test_absurd_rule_text_is_refused(mcp_factory) -> None:
    cases = {
        "100k chars": "keep mugs away from laptops " * 4000,
        "1 MB of one word": "a" * 1_000_000,
        "control characters": "keep mugs\x00\x1b[31m away\u202e from laptops" * 30,
        "deep brackets": "(" * 5000 + "keep mugs away from laptops" + ")" * 5000,
        "number overflow": "keep mugs at least " + "9" * 400 + " cm from laptops",
    }
    async with mcp_factory() as mcp:
        for name, text in cases.items():
            for tool in ("explain_rule", "add_rule"):
                ans = await mcp.call(tool, text=text)
                if tool == "explain_rule" and not ans.is_error:
                    assert ans.structured is not None and ans.structured["understood"] is False, name
                    continue
                assert ans.is_error and ans.code in RULE_CODES, f"{tool} {name}: {ans.text[:300]}"
                assert len(ans.text) < 4000, f"{tool} {name}: the error echoes the rule"
            ans = await mcp.call("analyze_image", image="/nonexistent.png", rules=[text])
            assert ans.is_error and ans.code in RULE_CODES, f"analyze {name}: {ans.text[:300]}"
        listed = await mcp.call("list_rules")
        assert not listed.is_error and listed.structured["rules"] == [], "nothing absurd was saved"
