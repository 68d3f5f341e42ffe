"""Embedded layout store search time at 10k and 100k stored layouts, exact (numpy) and ANN (usearch).

    python benchmarks/bench_search.py [--sizes 10000 100000] [--queries 50] [--k 5] [--json]

Synthetic data: 512-d unit embeddings (CLIP ViT-B-32 size) and layout vectors, in a temporary folder.
Queries are stored vectors plus noise (sigma 0.02 per dimension); recall@k compares the ANN results with the exact ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from mugpos.scene.model import Scale, Scene
from mugpos.stores.layouts import LAYOUT_DIM, EmbeddedLayoutStore, LayoutRecord, layout_vector

DIM = 512


def records(n: int, seed: int) -> tuple[list[LayoutRecord], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lay = np.abs(rng.normal(size=(n, LAYOUT_DIM))).astype(np.float32)
    lay /= np.linalg.norm(lay, axis=1, keepdims=True)
    scene = Scene.model_validate(
        {"image": {"width": 640, "height": 480}, "objects": [{"label": "cup", "box": [100, 100, 160, 170]}]}
    )
    scale = Scale(px_per_cm=8.0, source="assumed")
    base = LayoutRecord(
        analysis_id="x",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        scene=scene,
        scale=scale,
        layout_vector=layout_vector(scene, scale),
        labels=["cup"],
        summary="1 mug",
    )
    t0 = base.created_at
    out = [
        base.model_copy(
            update={
                "analysis_id": f"a{i:07d}",
                "created_at": t0 + timedelta(seconds=i),
                "has_violations": bool(i % 4 == 0),
                "embedding": emb[i].tolist(),
                "layout_vector": lay[i].tolist(),
            }
        )
        for i in range(n)
    ]
    return out, emb, lay


def ms_stats(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "p50": round(s[len(s) // 2], 2),
        "p99": round(s[min(int(0.99 * len(s)), len(s) - 1)], 2),
        "mean": round(statistics.mean(s), 2),
    }


async def bench(n: int, queries: int, k: int, ann_threshold: int) -> dict[str, object]:
    recs, emb, lay = records(n, seed=n)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="mugpos-bench-layouts-") as tmp:
        store = EmbeddedLayoutStore(tmp, ann_threshold=ann_threshold)
        t = time.perf_counter()
        for start in range(0, n, 5000):
            await store.put_many(recs[start : start + 5000])
        insert_s = time.perf_counter() - t
        t = time.perf_counter()
        await store.aclose()
        save_s = time.perf_counter() - t
        t = time.perf_counter()
        store = EmbeddedLayoutStore(tmp, ann_threshold=ann_threshold)
        reopen_s = time.perf_counter() - t
        targets = rng.choice(n, size=queries, replace=False)
        results: dict[str, object] = {
            "n": n,
            "insert_s": round(insert_s, 2),
            "save_s": round(save_s, 2),
            "reopen_s": round(reopen_s, 2),
            "ann": store.status().details["search"],
        }
        for label, kw in (
            ("image", lambda i: {"embedding": (emb[i] + rng.normal(scale=0.02, size=DIM)).tolist()}),
            (
                "hybrid",
                lambda i: {
                    "embedding": (emb[i] + rng.normal(scale=0.02, size=DIM)).tolist(),
                    "layout_vector": lay[i].tolist(),
                },
            ),
        ):
            exact_ms, ann_ms, recall, top1, ann_top1 = [], [], [], 0, 0
            for i in targets:
                q = kw(int(i))
                t = time.perf_counter()
                ex = await store.search(k=k, exact=True, **q)
                exact_ms.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                an = await store.search(k=k, **q)
                ann_ms.append((time.perf_counter() - t) * 1e3)
                a = {m.record.analysis_id for m in an}
                recall.append(len(a & {m.record.analysis_id for m in ex}) / k)
                top1 += ex[0].record.analysis_id == f"a{int(i):07d}"
                ann_top1 += bool(an) and an[0].record.analysis_id == f"a{int(i):07d}"
            results[label] = {
                "exact_ms": ms_stats(exact_ms),
                "ann_ms": ms_stats(ann_ms) if store.status().details["ann_rows"] else None,
                "ann_recall_at_k": round(statistics.mean(recall), 4),
                "exact_top1_is_target": top1 / len(targets),
                "ann_top1_is_target": ann_top1 / len(targets),
            }
        await store.aclose()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument(
        "--ann-threshold", type=int, default=5_000, help="build the ANN index from this many rows"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = []
    for n in args.sizes:
        r = asyncio.run(bench(n, args.queries, args.k, args.ann_threshold))
        out.append(r)
        if not args.json:
            report(r)
    if args.json:
        print(json.dumps(out))


def report(r: dict) -> None:
    print(
        f"{r['n']:>7} layouts: insert {r['insert_s']} s, save {r['save_s']} s, reopen {r['reopen_s']} s ({r['ann']})"
    )
    for label in ("image", "hybrid"):
        x = r[label]
        ann = x["ann_ms"]
        line = f"  {label:6} exact p50 {x['exact_ms']['p50']} ms p99 {x['exact_ms']['p99']} ms"
        if ann:
            line += (
                f" | ann p50 {ann['p50']} ms p99 {ann['p99']} ms, recall@k {x['ann_recall_at_k']},"
                f" top-1 the queried layout: exact {x['exact_top1_is_target']:.2f} ann {x['ann_top1_is_target']:.2f}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
