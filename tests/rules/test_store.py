"""Rule stores: the embedded JSON file and MongoDB (a real wire-protocol server, nx-27017)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from testkit import free_port

from mugpos.errors import NotFound
from mugpos.rules.grammar import parse_rule
from mugpos.settings import Settings
from mugpos.stores.rules import EmbeddedRuleStore, MongoRuleStore, open_rule_store


def rule(text: str) -> Any:
    return parse_rule(text, max_chars=500)


async def exercise(store: Any) -> None:
    a = await store.add(rule("Keep mugs at least 6 inches away from laptops"))
    b = await store.add(rule("Position mugs on the right side of the workspace"))
    assert a.id and a.id.startswith("r-") and len(a.id) == 8 and a.id != b.id
    assert (await store.add(rule("Keep mugs at least 6 inches away from laptops"))).id == a.id  # stable
    assert {r.id for r in await store.list()} == {a.id, b.id}
    off = await store.set_enabled(a.id, False)
    assert off.enabled is False
    assert [r.id for r in await store.list(enabled_only=True)] == [b.id]
    crit = await store.set_severity(b.id, "critical")
    assert crit.severity == "critical" and (await store.get(b.id)).severity == "critical"
    assert await store.remove(a.id) is True and await store.remove(a.id) is False
    with pytest.raises(NotFound):
        await store.get(a.id)


@pytest.mark.anyio
async def test_embedded_store_persists(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    store = EmbeddedRuleStore(path)
    await exercise(store)
    again = EmbeddedRuleStore(path)  # a restart
    [kept] = await again.list()
    assert kept.text == "Position mugs on the right side of the workspace" and kept.severity == "critical"
    assert not list(tmp_path.glob(".rules-*"))  # no temp files left behind


@pytest.mark.anyio
async def test_embedded_store_concurrent_writers(tmp_path: Path) -> None:
    store = EmbeddedRuleStore(tmp_path / "rules.json")
    texts = [f"Keep mugs at least {n} cm away from laptops" for n in range(1, 21)]
    await asyncio.gather(*(store.add(rule(t)) for t in texts))
    assert len(await EmbeddedRuleStore(tmp_path / "rules.json").list()) == 20


@pytest.mark.anyio
async def test_mongo_store(mongo_uri: str) -> None:
    store = MongoRuleStore(mongo_uri, "mugpos_test", timeout_s=3)
    await store.open()
    try:
        await exercise(store)
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_open_rule_store_falls_back_when_mongo_is_down(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, rule_store="mongodb", mongodb_uri=f"mongodb://127.0.0.1:{free_port()}",
                 mongodb_timeout_s=0.3)  # fmt: skip
    store = await open_rule_store(s)
    added = await store.add(rule("Keep mugs on the table"))
    st = store.status()
    assert st.degraded is True and st.backend == "embedded" and "MongoDB" in st.reason
    assert [r.id for r in await EmbeddedRuleStore(tmp_path / "rules.json").list()] == [added.id]
    await store.aclose()
    assert (await open_rule_store(Settings(data_dir=tmp_path))).status().backend == "embedded"
