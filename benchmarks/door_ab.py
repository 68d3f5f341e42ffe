"""Before/after for the MCP door, side by side in one run: two checkouts of mugpos, interleaved.

    python benchmarks/door_ab.py --trees /path/to/before,/path/to/after [--rounds 5] [--pairs 2]
        [--sections cold,stdio] [--json]

Each tree is put first on PYTHONPATH of the servers and workers this starts (the shared venv, the
same photos, the same machine), and the rounds alternate which tree goes first, so the load of a
shared machine, which drifts by the minute, weighs on both alike:

- `cold`: process start -> first finished `analyze_image` for `mugpos serve` (stdio, SDK client)
  and for the RunPod worker (`--test_input`), the same photo for both trees in a round; with the
  process's CPU seconds by then and the object counts (the answers must agree); each tree's
  bytecode compiled first, as an installed package has it (`mugpos.bench.config.compile_bytecode`);
- `stdio`: the `mugpos bench` door measures (`mugpos.bench.door.door_side`): one call beside
  `engine.analyze` (this process's engine, from whichever mugpos this script imports), and 16
  distinct photos one after another vs all at once.

A checkout of an older commit for "before": `git archive COMMIT mugpos | tar -x -C /tmp/before`.
Uses the test weights (MUGPOS_TEST_DATA, default ../shared/data) with the embedder off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mugpos.bench.config import compile_bytecode
from mugpos.bench.door import (
    CONCURRENT,
    distinct_photos,
    door_side,
    engine_app,
    serve_first_answer,
    worker_first_answer,
)
from mugpos.settings import Settings


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def _env(data: Path, photos: Path, tree: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(
        {
            "YOLO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "MUGPOS_DETECTOR_WEIGHTS": str(data / "models" / "yolov8n_int8.onnx"),
            "MUGPOS_EMBEDDER": "none",
            "MUGPOS_DEVICE": "cpu",
            "MUGPOS_ALLOWED_DIRS": os.pathsep.join([str(photos), str(data)]),
            "MUGPOS_DATA_DIR": str(data_dir),
            "PYTHONPATH": os.pathsep.join([tree, *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
    )
    return env


async def cold(trees: list[str], rounds: int, data: Path, work: Path, photos: list[Path]) -> dict[str, Any]:
    for tree in trees:  # as an installed package has it (see compile_bytecode)
        compile_bytecode(Path(tree) / "mugpos")
    rows: dict[str, dict[str, list[Any]]] = {t: {} for t in trees}
    for r in range(rounds):
        photo = photos[r % len(photos)]
        for i, tree in enumerate(trees if r % 2 == 0 else trees[::-1]):
            env = _env(data, photo.parent, tree, work / f"cold-{r}-{i}-{time.time_ns()}")
            s = await serve_first_answer(env, work, photo)
            w = await asyncio.to_thread(worker_first_answer, env, work, photo)
            got = rows[tree]
            for key, value in (
                ("serve_first_answer_s", s.get("first_answer_s")),
                ("serve_initialize_s", s.get("initialize_s")),
                ("serve_cpu_s", s.get("cpu_s")),
                ("serve_objects", s.get("objects")),
                ("worker_first_answer_s", w.get("first_answer_s")),
                ("worker_cpu_s", w.get("cpu_s")),
                ("errors", s.get("error") or w.get("error")),
            ):
                got.setdefault(key, []).append(value)
            print(f"cold round {r} {tree}: serve {s} worker {w.get('first_answer_s', w)}", file=sys.stderr)
    out: dict[str, Any] = {}
    for tree, got in rows.items():
        out[tree] = {
            k: _median([v for v in vs if v is not None]) if k.endswith("_s") else vs for k, vs in got.items()
        }
        out[tree]["runs_serve_s"] = got.get("serve_first_answer_s")
        out[tree]["runs_worker_s"] = got.get("worker_first_answer_s")
    objects = [rows[t].get("serve_objects") for t in trees]
    out["same_objects"] = all(o == objects[0] for o in objects)
    return out


async def stdio(trees: list[str], rounds: int, pairs: int, data: Path, work: Path) -> dict[str, Any]:
    images = [data / "photos" / "coffee.png", *sorted((data / "coco-cups" / "images").glob("*.jpg"))]
    per = -(-CONCURRENT // len(images)) * len(images)
    n_blocks = 2 + 2 * pairs
    runs = len(trees) * rounds
    folder = work / "door-photos"
    photos = distinct_photos(images, runs * n_blocks * per + 3, folder)
    blocks = [photos[k * per : k * per + CONCURRENT] for k in range(runs * n_blocks)]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        detector_weights=str(data / "models" / "yolov8n_int8.onnx"),
        embedder="none",
        data_dir=work / "engine-data",
        allowed_dirs=[folder, data],
    )
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
    async with engine_app(settings, photos[-1]) as app:
        k = 0
        for r in range(rounds):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                env = _env(data, folder, tree, work / f"stdio-{k}")
                mine = blocks[k * n_blocks : (k + 1) * n_blocks]
                res = await door_side("stdio", env, work, app, mine, photos[-1 - k % 3])
                k += 1
                rows[tree].append(res)
                print(f"stdio round {r} {tree}: {json.dumps(res)}", file=sys.stderr)
    out: dict[str, Any] = {}
    for tree, got in rows.items():
        out[tree] = {
            key: _median([g[key] for g in got if g.get(key) is not None])
            for key in (
                "call_vs_engine_analyze",
                "engine_analyze_ms",
                "sequential_per_s",
                "concurrent_per_s",
                "concurrent_vs_sequential",
            )
        }
        out[tree]["call_ms"] = _median([g["median"]["round_trip_ms"] for g in got])
        out[tree]["concurrent_vs_sequential_runs"] = [
            x for g in got for x in g["concurrent_vs_sequential_runs"]
        ]
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated checkouts (folders holding mugpos/)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pairs", type=int, default=2, help="sequential/concurrent block pairs per stdio run")
    p.add_argument("--sections", default="cold,stdio")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees.split(",")]
    data = Path(os.environ.get("MUGPOS_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    result: dict[str, Any] = {"trees": trees, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="mugpos-door-ab-") as tmp:
        work = Path(tmp)
        sections = args.sections.split(",")
        if "cold" in sections:
            cold_photos = distinct_photos(
                [data / "photos" / "coffee.png", *sorted((data / "coco-cups" / "images").glob("*.jpg"))[:4]],
                max(args.rounds, 5),
                work / "cold-photos",
            )
            result["cold"] = await cold(trees, args.rounds, data, work, cold_photos)
        if "stdio" in sections:
            result["stdio"] = await stdio(trees, max(1, args.rounds // 2), args.pairs, data, work)
    result["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(result))
        return
    for name in ("cold", "stdio"):
        for tree in trees:
            if name in result:
                print(f"{name:5s} {tree}: {json.dumps(result[name][tree])}")
    if "cold" in result:
        print(f"cold: same object counts on every tree: {result['cold']['same_objects']}")
    print(f"load average before {result['load_before']}, after {result['load_after']}")


if __name__ == "__main__":
    asyncio.run(main())
