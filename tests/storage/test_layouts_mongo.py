"""MongoLayoutStore against nx-27017, a pure-Python MongoDB-wire server, plus the Atlas query shapes.

nx-27017 answers PyMongo's AsyncMongoClient (insert, find, indexes, $match/$sort/$limit/$project). It
accepts `createSearchIndexes` but cannot run `$vectorSearch`, so these tests run the real capability
probe and the exact fallback; the Atlas index definition and `$vectorSearch` pipeline are checked by
their shape.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from storage_helpers import make_record, simple_scene, unit_vectors
from testkit import free_port

from mugpos.errors import BackendError
from mugpos.stores.layouts import (
    LAYOUT_DIM,
    NO_VECTOR_SEARCH,
    VECTOR_INDEX_NAME,
    EmbeddedLayoutStore,
    LayoutFilters,
    MongoLayoutStore,
    open_layout_store,
    vector_index_definition,
    vector_search_pipeline,
)


@pytest.mark.anyio
async def test_mongo_store_fallback_path_end_to_end(mongo_uri: str, make_settings) -> None:
    store = await open_layout_store(make_settings(layout_store="mongodb", mongodb_uri=mongo_uri))
    assert isinstance(store, MongoLayoutStore)
    e = unit_vectors(4, 32, seed=7)
    recs = [
        make_record("left", simple_scene(50), e[0].tolist(), 0),
        make_record("right", simple_scene(880), e[1].tolist(), 1),
        make_record("bare", simple_scene(880, laptop=False), e[2].tolist(), 2),
    ]
    for r in recs:
        await store.put(r)
    st = store.status().details
    assert st["vector_search"] is False and st["capability"] == NO_VECTOR_SEARCH
    # nx-27017 rejects this index definition (or, for others, accepts it and then cannot run the probe)
    assert st["last_error"].startswith(("createSearchIndexes:", "$vectorSearch:"))
    assert await store.count() == 3
    got = await store.get("right")
    assert got is not None and got.scene == recs[1].scene and got.analysis == recs[1].analysis
    assert got.created_at == recs[1].created_at
    assert await store.get("missing") is None

    for r in recs:
        res = await store.search(embedding=r.embedding, layout_vector=r.layout_vector, k=3)
        assert res[0].record.analysis_id == r.analysis_id and res[0].score == pytest.approx(1.0, abs=1e-4)
    res = await store.search(layout_vector=recs[1].layout_vector, k=3, exclude_id="right")
    assert res[0].record.analysis_id == "bare" and len(res) == 2
    res = await store.search(
        embedding=recs[0].embedding, k=5, filters=LayoutFilters(labels_all=["cup", "laptop"])
    )
    assert {m.record.analysis_id for m in res} == {"left", "right"}
    res = await store.search(embedding=recs[0].embedding, k=5, filters=LayoutFilters(has_violations=True))
    assert {m.record.analysis_id for m in res} == {"right"}
    t0 = recs[0].created_at
    res = await store.search(
        embedding=recs[0].embedding, k=5, filters=LayoutFilters(since=t0 + timedelta(hours=12))
    )
    assert {m.record.analysis_id for m in res} == {"right", "bare"}

    # replace by id
    await store.put(recs[0].model_copy(update={"summary": "moved"}))
    assert await store.count() == 3 and (await store.get("left")).summary == "moved"

    # The same ranking as the embedded store for the same data.
    emb = EmbeddedLayoutStore(make_settings().data_dir / "cmp")
    for r in recs:
        await emb.put(r)
    for q in recs:
        a = [
            (m.record.analysis_id, round(m.score, 4)) for m in await store.search(embedding=q.embedding, k=3)
        ]
        b = [(m.record.analysis_id, round(m.score, 4)) for m in await emb.search(embedding=q.embedding, k=3)]
        assert a == b
    await store.aclose()


@pytest.mark.anyio
async def test_unreachable_mongodb_falls_back_or_fails(make_settings) -> None:
    uri = f"mongodb://mugpos:hunter2@127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    store = await open_layout_store(
        make_settings(layout_store="mongodb", mongodb_uri=uri, mongodb_timeout_s=0.5)
    )
    assert time.perf_counter() - t0 < 5
    assert isinstance(store, EmbeddedLayoutStore)
    st = store.status()
    assert st.degraded is True and "unreachable" in st.reason and "embedded" in st.reason
    assert "hunter2" not in st.reason and "127.0.0.1" in st.reason
    with pytest.raises(BackendError, match="unreachable") as err:
        await open_layout_store(
            make_settings(
                layout_store="mongodb", mongodb_uri=uri, mongodb_timeout_s=0.5, mongodb_fallback=False
            )
        )
    assert "hunter2" not in str(err.value.to_dict()) and err.value.__cause__ is not None


def test_vector_index_definition_shape() -> None:
    d = vector_index_definition(512)
    assert d["name"] == VECTOR_INDEX_NAME and d["type"] == "vectorSearch"
    fields = {f["path"]: f for f in d["definition"]["fields"]}
    assert fields["embedding"] == {
        "type": "vector",
        "path": "embedding",
        "numDimensions": 512,
        "similarity": "cosine",
    }
    assert fields["layout_vector"]["numDimensions"] == LAYOUT_DIM
    assert fields["layout_vector"]["similarity"] == "cosine"
    for f in ("labels", "has_violations", "created_at", "analysis_id"):
        assert fields[f] == {"type": "filter", "path": f}
    assert "embedding" not in {f["path"] for f in vector_index_definition(None)["definition"]["fields"]}


def test_vector_search_pipeline_shape() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    q = np.linspace(0, 1, 8).tolist()
    p = vector_search_pipeline(
        path="embedding",
        query_vector=q,
        k=5,
        filters=LayoutFilters(labels_all=["cup", "laptop"], has_violations=False, since=since),
        exclude_id="abc",
    )
    vs = p[0]["$vectorSearch"]
    assert vs["index"] == VECTOR_INDEX_NAME and vs["path"] == "embedding" and vs["queryVector"] == q
    assert vs["limit"] == 50 and vs["numCandidates"] >= vs["limit"]
    assert vs["filter"] == {
        "$and": [
            {"labels": {"$eq": "cup"}},
            {"labels": {"$eq": "laptop"}},
            {"has_violations": {"$eq": False}},
            {"created_at": {"$gte": since}},
            {"analysis_id": {"$ne": "abc"}},
        ]
    }
    assert p[1]["$project"]["vs_score"] == {"$meta": "vectorSearchScore"}
    assert (
        "filter" not in vector_search_pipeline(path="layout_vector", query_vector=q, k=1)[0]["$vectorSearch"]
    )


@pytest.mark.anyio
async def test_rules_and_layouts_share_one_client_per_uri(mongo_uri: str, make_settings) -> None:
    from mugpos.stores import mongo as mongo_clients
    from mugpos.stores.rules import MongoRuleStore, open_rule_store

    settings = make_settings(layout_store="mongodb", rule_store="mongodb", mongodb_uri=mongo_uri)
    layouts = await open_layout_store(settings)
    rules = await open_rule_store(settings)
    assert isinstance(layouts, MongoLayoutStore) and isinstance(rules, MongoRuleStore)
    assert rules._client is layouts._client and mongo_clients.users(mongo_uri) == 2
    assert rules.status().backend == layouts.status().backend == "mongodb"
    await layouts.aclose()
    assert mongo_clients.users(mongo_uri) == 1
    assert await rules.list() == []  # the client stays open while the rule store uses it
    await rules.aclose()
    assert mongo_clients.users(mongo_uri) == 0
