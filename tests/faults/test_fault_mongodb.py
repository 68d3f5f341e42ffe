"""MongoDB unreachable (a closed loopback port): the embedded fallback or a clear error, never a hang."""

from __future__ import annotations

import asyncio

import pytest
from testkit import free_port, open_mcp_client

from mugpos.errors import MugposError

pytestmark = pytest.mark.anyio

BOUND_S = 30.0  # server selection is bounded by mongodb_timeout_s; a hang fails the test


def _mongo(make_settings, fallback: bool):
    uri = f"mongodb://mugpos:pw@127.0.0.1:{free_port()}/?directConnection=true"
    return make_settings(
        rule_store="mongodb",
        layout_store="mongodb",
        mongodb_uri=uri,
        mongodb_timeout_s=1.0,
        mongodb_fallback=fallback,
    )


async def test_unreachable_mongodb_falls_back_to_the_embedded_store(make_settings) -> None:
    from mugpos.operations import Mugpos

    app = Mugpos(_mongo(make_settings, fallback=True))
    try:
        async with asyncio.timeout(BOUND_S):
            added = await app.add_rule("keep mugs at least 10 cm from laptops")
            listed = await app.list_rules()
            assert [r.id for r in listed.rules] == [added.id]
        status = await app.status()
        assert status.stores["rules"]["degraded"], status.stores
        assert any(d.startswith("rules:") and "MongoDB" in d for d in status.degraded), status.degraded
        assert "pw@" not in str(status.model_dump()), "the URI's password is in the status"
        # the saved rule survives in the fallback store and is checked by later calls
        async with asyncio.timeout(BOUND_S):
            check = await app.check(
                scene={"image": {"width": 800, "height": 600}, "px_per_cm": 10,
                       "objects": [{"label": "cup", "box": [100, 100, 150, 150]},
                                   {"label": "laptop", "box": [160, 100, 400, 300]}]},
            )  # fmt: skip
        assert [v.status for v in check.rules] == ["violated"]
    finally:
        await app.aclose()


async def test_unreachable_mongodb_without_fallback_is_a_clear_error(make_settings) -> None:
    from mugpos.operations import Mugpos

    app = Mugpos(_mongo(make_settings, fallback=False))
    try:
        for op in (app.list_rules, lambda: app.add_rule("keep mugs at least 10 cm from laptops")):
            with pytest.raises(MugposError) as info:
                async with asyncio.timeout(BOUND_S):
                    await op()
            err = info.value
            assert err.code == "backend_unavailable", err.to_dict()
            assert "MongoDB" in err.message and err.hint
            assert "pw@" not in err.message + err.hint
    finally:
        await app.aclose()


async def test_unreachable_mongodb_through_the_mcp_server(make_settings) -> None:
    from mugpos.operations import Mugpos

    for fallback in (True, False):
        app = Mugpos(_mongo(make_settings, fallback=fallback))
        try:
            async with open_mcp_client(app) as client, asyncio.timeout(BOUND_S):
                result = await client.call_tool("list_rules", {})
                status = await client.read_resource("mugpos://status")
        finally:
            await app.aclose()
        text = result.content[0].text
        status_text = status.contents[0].text
        if fallback:
            assert not result.is_error, text
            assert "MongoDB unreachable" in status_text
        else:
            assert result.is_error and "backend_unavailable" in text, text
        assert "internal error" not in text
