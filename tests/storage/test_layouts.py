"""The embedded layout store and the geometric layout vector, on the real coco-cups scenes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from storage_helpers import (
    SCALE,
    SCENES,
    T0,
    coco_scenes,
    make_record,
    needs_data,
    simple_scene,
    unit_vectors,
)

from mugpos.errors import ConfigError, MugposError
from mugpos.scene.model import Scale, Scene
from mugpos.stores.layouts import (
    LAYOUT_DIM,
    EmbeddedLayoutStore,
    LayoutFilters,
    LayoutRecord,
    LayoutStore,
    layout_vector,
    open_layout_store,
)

# --- layout_vector ------------------------------------------------------------------------------


def test_layout_vector_shape_norm_and_empty() -> None:
    v = layout_vector(simple_scene(100), SCALE)
    assert len(v) == LAYOUT_DIM
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    empty = Scene.model_validate({"image": {"width": 10, "height": 10}, "objects": []})
    assert layout_vector(empty, SCALE) == [0.0] * LAYOUT_DIM


def test_layout_vector_is_comparable_across_image_sizes() -> None:
    small = simple_scene(100)
    big = Scene.model_validate(
        {
            "image": {"width": 2000, "height": 1600},
            "objects": [{"label": o.label, "box": [c * 2 for c in o.box]} for o in small.objects],
        }
    )
    a = layout_vector(small, SCALE)
    b = layout_vector(big, Scale(px_per_cm=20.0, source="assumed"))
    assert np.allclose(a, b, atol=1e-5)


def test_layout_vector_sees_where_the_mug_is() -> None:
    left, left2, right = (layout_vector(simple_scene(x), SCALE) for x in (50, 60, 880))
    assert np.dot(left, left2) > np.dot(left, right)
    assert np.dot(left, right) < 0.99


@needs_data
def test_layout_vectors_of_real_scenes_differ() -> None:
    vecs = np.array([layout_vector(s, SCALE) for _, s in coco_scenes()])
    sims = vecs @ vecs.T
    assert np.allclose(np.diag(sims), 1.0, atol=1e-5)
    off = sims[~np.eye(len(vecs), dtype=bool)]
    assert off.max() < 0.999  # no two real desks collapse to one descriptor


# --- the embedded store -------------------------------------------------------------------------


@pytest.fixture
def coco_records() -> list[LayoutRecord]:
    if not SCENES.is_dir():
        pytest.skip(f"test data not found at {SCENES} (MUGPOS_TEST_DATA)")
    scenes = coco_scenes()
    embs = unit_vectors(len(scenes), 512, seed=1)
    return [make_record(name, sc, embs[i].tolist(), i) for i, (name, sc) in enumerate(scenes)]


@pytest.mark.anyio
async def test_put_get_search_filters_and_reopen(tmp_path: Path, coco_records: list[LayoutRecord]) -> None:
    store = EmbeddedLayoutStore(tmp_path / "layouts")
    assert isinstance(store, LayoutStore)
    for rec in coco_records:
        await store.put(rec)
    assert await store.count() == len(coco_records)

    got = await store.get(coco_records[3].analysis_id)
    assert got is not None
    assert got.scene == coco_records[3].scene and got.analysis == coco_records[3].analysis
    assert np.allclose(got.embedding, coco_records[3].embedding, atol=1e-6)
    assert np.allclose(got.layout_vector, coco_records[3].layout_vector, atol=1e-5)
    assert await store.get("nope") is None

    # Searching by each stored image returns it first, by image, by layout and hybrid.
    for rec in coco_records:
        for kw in (
            {"embedding": rec.embedding},
            {"layout_vector": rec.layout_vector},
            {"embedding": rec.embedding, "layout_vector": rec.layout_vector},
        ):
            res = await store.search(k=3, **kw)
            assert res[0].record.analysis_id == rec.analysis_id
            assert res[0].score == pytest.approx(1.0, abs=1e-4)
            assert [m.score for m in res] == sorted((m.score for m in res), reverse=True)
    hybrid = await store.search(
        embedding=coco_records[0].embedding, layout_vector=coco_records[0].layout_vector
    )
    assert hybrid[0].image_score == pytest.approx(1.0, abs=1e-4)
    assert hybrid[0].layout_score == pytest.approx(1.0, abs=1e-4)
    assert hybrid[1].score == pytest.approx(
        0.7 * hybrid[1].image_score + 0.3 * hybrid[1].layout_score, abs=1e-5
    )

    # exclude_id: "more like this one" never returns itself.
    q = coco_records[0]
    res = await store.search(embedding=q.embedding, k=20, exclude_id=q.analysis_id)
    assert q.analysis_id not in [m.record.analysis_id for m in res] and len(res) == len(coco_records) - 1

    # Filters.
    label = "cup"
    with_cup = {r.analysis_id for r in coco_records if label in r.labels}
    res = await store.search(embedding=q.embedding, k=20, filters=LayoutFilters(labels_all=[label]))
    assert {m.record.analysis_id for m in res} == with_cup
    two = coco_records[1].labels[:2]
    expect = {r.analysis_id for r in coco_records if set(two) <= set(r.labels)}
    res = await store.search(layout_vector=q.layout_vector, k=20, filters=LayoutFilters(labels_all=two))
    assert {m.record.analysis_id for m in res} == expect and coco_records[1].analysis_id in expect
    res = await store.search(embedding=q.embedding, k=20, filters=LayoutFilters(has_violations=True))
    assert {m.record.analysis_id for m in res} == {r.analysis_id for r in coco_records if r.has_violations}
    res = await store.search(
        embedding=q.embedding,
        k=20,
        filters=LayoutFilters(since=T0 + timedelta(days=2), until=T0 + timedelta(days=4)),
    )
    assert {m.record.analysis_id for m in res} == {r.analysis_id for r in coco_records[2:5]}
    res = await store.search(embedding=q.embedding, filters=LayoutFilters(labels_all=["giraffe"]))
    assert res == []

    ranking = [(m.record.analysis_id, m.score) for m in await store.search(embedding=q.embedding, k=10)]
    status = store.status()
    assert status.backend == "embedded" and status.details["count"] == len(coco_records)
    assert status.details["search"].startswith("exact") and status.degraded is False and status.ok
    await store.aclose()

    # A restart: same count, same ranking, same records.
    again = EmbeddedLayoutStore(tmp_path / "layouts")
    assert await again.count() == len(coco_records)
    assert [
        (m.record.analysis_id, m.score) for m in await again.search(embedding=q.embedding, k=10)
    ] == ranking
    assert (await again.get(coco_records[3].analysis_id)) == got


@pytest.mark.anyio
async def test_replace_same_id_and_bad_queries(tmp_path: Path) -> None:
    store = EmbeddedLayoutStore(tmp_path)
    e = unit_vectors(3, 8, seed=2)
    await store.put(make_record("a", simple_scene(50), e[0].tolist()))
    await store.put(make_record("b", simple_scene(800), e[1].tolist()))
    await store.put(make_record("a", simple_scene(50, laptop=False), e[2].tolist()))
    assert await store.count() == 2
    rec = await store.get("a")
    assert rec is not None and "laptop" not in rec.labels
    res = await store.search(embedding=e[2].tolist(), k=5)
    assert res[0].record.analysis_id == "a" and len(res) == 2
    with pytest.raises(MugposError):
        await store.search(k=5)
    with pytest.raises(ConfigError):
        await store.search(embedding=[1.0] * 9)
    with pytest.raises(MugposError):
        await store.search(embedding=[float("nan")] * 8)
    with pytest.raises(MugposError):
        await store.search(embedding=e[0].tolist(), k=0)


@pytest.mark.anyio
async def test_records_without_embedding_are_found_by_layout_only(tmp_path: Path) -> None:
    store = EmbeddedLayoutStore(tmp_path)
    await store.put(make_record("no-emb", simple_scene(50), None))
    res = await store.search(embedding=[1.0, 0.0, 0.0])
    assert res == []  # nothing to compare an image with
    res = await store.search(layout_vector=layout_vector(simple_scene(50), SCALE))
    assert [m.record.analysis_id for m in res] == ["no-emb"] and res[0].image_score is None
    await store.put(make_record("emb", simple_scene(50), [1.0, 0.0, 0.0]))
    res = await store.search(embedding=[1.0, 0.0, 0.0], layout_vector=layout_vector(simple_scene(50), SCALE))
    assert [m.record.analysis_id for m in res] == ["emb", "no-emb"]
    assert res[1].image_score is None and res[1].score == pytest.approx(0.3, abs=1e-4)


@pytest.mark.anyio
async def test_two_processes_share_the_folder_and_survive_a_torn_line(tmp_path: Path) -> None:
    a = EmbeddedLayoutStore(tmp_path)
    b = EmbeddedLayoutStore(tmp_path)
    e = unit_vectors(3, 16, seed=3)
    await a.put(make_record("from-a", simple_scene(50), e[0].tolist()))
    await b.put(make_record("from-b", simple_scene(500), e[1].tolist()))
    assert await a.count() == 2 and (await a.get("from-b")) is not None
    res = await a.search(embedding=e[1].tolist())
    assert res[0].record.analysis_id == "from-b"
    # A crash mid-write leaves half a line: readers ignore it, the next writer cuts it off.
    with open(tmp_path / "index.jsonl", "ab") as fh:
        fh.write(b'{"row": 2, "id": "torn"')
    c = EmbeddedLayoutStore(tmp_path)
    assert await c.count() == 2
    await c.put(make_record("after", simple_scene(300), e[2].tolist()))
    d = EmbeddedLayoutStore(tmp_path)
    assert await d.count() == 3 and (await d.get("after")) is not None
    lines = (tmp_path / "index.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["from-a", "from-b", "after"]


def synthetic_records(n: int, dim: int, seed: int) -> list[LayoutRecord]:
    rng = np.random.default_rng(seed)
    embs = unit_vectors(n, dim, seed)
    lays = np.abs(rng.normal(size=(n, LAYOUT_DIM))).astype(np.float32)
    lays /= np.linalg.norm(lays, axis=1, keepdims=True)
    scene = simple_scene(100)
    base = make_record("x", scene, None)
    return [
        base.model_copy(
            update={
                "analysis_id": f"s{i}",
                "embedding": embs[i].tolist(),
                "layout_vector": lays[i].tolist(),
                "created_at": T0 + timedelta(minutes=i),
                "has_violations": bool(i % 3 == 0),
            }
        )
        for i in range(n)
    ]


@pytest.mark.anyio
async def test_ann_agrees_with_exact_and_persists(tmp_path: Path) -> None:
    n, dim = 3000, 64
    recs = synthetic_records(n, dim, seed=4)
    store = EmbeddedLayoutStore(tmp_path, ann_threshold=1000)
    await store.put_many(recs[:2000])
    for r in recs[2000:2010]:
        await store.put(r)  # single puts after the index exists go in incrementally
    await store.put_many(recs[2010:])
    assert store.status().details["ann_rows"] == n and store.status().details["search"].startswith("ann")
    rng = np.random.default_rng(5)
    targets = rng.choice(n, size=40, replace=False)
    agree = 0
    for t in targets:
        q = np.asarray(recs[t].embedding) + rng.normal(scale=0.02, size=dim)
        ann = await store.search(embedding=q.tolist(), k=5)
        assert store.status().details["last_search"] == "ann"
        exact = await store.search(embedding=q.tolist(), k=5, exact=True)
        assert store.status().details["last_search"] == "exact"
        assert exact[0].record.analysis_id == f"s{t}"
        agree += ann[0].record.analysis_id == exact[0].record.analysis_id
        # rescoring is exact: the scores ANN returns are the true cosine scores
        assert ann[0].score == pytest.approx(exact[0].score, abs=1e-6)
    assert agree == len(targets)
    # a selective filter takes the exact path, and filters still hold
    flt = LayoutFilters(has_violations=True, since=T0 + timedelta(minutes=2900))
    res = await store.search(embedding=recs[2901].embedding, k=3, filters=flt)
    assert store.status().details["last_search"] == "exact"
    assert all(m.record.has_violations and m.record.created_at >= flt.since for m in res)
    await store.aclose()
    assert (tmp_path / "ann-embedding.usearch").exists()

    reopened = EmbeddedLayoutStore(tmp_path, ann_threshold=1000)
    assert reopened.status().details["ann_rows"] == n
    t = int(targets[0])
    res = await reopened.search(embedding=recs[t].embedding, layout_vector=recs[t].layout_vector, k=3)
    assert res[0].record.analysis_id == f"s{t}" and reopened.status().details["last_search"] == "ann"
    res = await reopened.search(layout_vector=recs[t].layout_vector, k=3)
    assert res[0].record.analysis_id == f"s{t}"


@pytest.mark.anyio
async def test_open_layout_store_default_is_embedded(make_settings) -> None:
    settings = make_settings()
    store = await open_layout_store(settings)
    assert isinstance(store, EmbeddedLayoutStore)
    assert store.path == settings.data_dir / "layouts"
    await store.aclose()


@pytest.mark.anyio
async def test_mongodb_without_uri_is_a_config_error(make_settings) -> None:
    with pytest.raises(ConfigError, match="MUGPOS_MONGODB_URI"):
        await open_layout_store(make_settings(layout_store="mongodb"))
