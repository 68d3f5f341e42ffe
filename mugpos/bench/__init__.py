"""`mugpos bench`: every speed claim measured side by side in one run, offline.

Runs on random-initialised models (`--detector yolov8n.yaml`, `--clip-model ViT-B-32|none`) or real
exported weights (`../shared/data/models/yolov8n_int8.onnx`), on the CPU or a GPU. Sections, one
module each: per-stage latency of one analysis (`stages`), detector throughput through the
MicroBatcher (on and off) against plain Ultralytics `predict` one by one on the same model and photos
(`throughput`), cache hit latency per tier (`cache`), cold start (process start to MCP `initialize`,
and to the first finished analysis) and peak memory (`cold`), an analysis through the MCP door beside
`engine.analyze` (`door`), how well rules are read and how fast mugs are placed (`rules`), and whether an open dashboard costs a served analysis anything
(`dashboard`); `report` holds the bars and the table.
Each section that cannot run (no redis-server, say) says why instead of failing the run. Importing
this package is light (no torch): the CLI builds its `bench` arguments from it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mugpos.bench.config import (
    BenchConfig,
    add_bench_arguments,
    child_env,
    config_from_args,
    find_images,
    section,
    settings_for,
    synthetic_images,
)
from mugpos.bench.report import bars, peak_rss_mb, print_table


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections and return one JSON-ready document (see `print_table`)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t_start = time.perf_counter()
    from mugpos.engine.detector import ultralytics_logs_to_stderr

    ultralytics_logs_to_stderr()
    with (
        tempfile.TemporaryDirectory(prefix="mugpos-bench-") as tmp,
        contextlib.redirect_stdout(sys.stderr),  # stdout belongs to the one JSON document
    ):
        cfg = config_from_args(args, Path(tmp))
        result: dict[str, Any] = {"config": _describe(cfg)}
        asyncio.run(_run(cfg, result))
        result["memory"] = {"peak_rss_mb": round(peak_rss_mb(resource.RUSAGE_SELF), 1)}
        result["bars"] = bars(result)
        result["wall_s"] = round(time.perf_counter() - t_start, 1)
        return result


def _describe(cfg: BenchConfig) -> dict[str, Any]:
    import torch

    return {
        "detector": cfg.detector,
        "clip_model": cfg.clip_model,
        "device": cfg.device,
        "half": cfg.half,
        "imgsz": cfg.imgsz,
        "images": len(cfg.images),
        "image_source": cfg.image_source,
        "repeat": cfg.repeat,
        "items_per_run": cfg.items,
        "concurrency": cfg.concurrency,
        "batch_max_size": cfg.batch_max_size,
        "batch_max_wait_ms": cfg.batch_max_wait_ms,
        "batch_key": "image shape" if cfg.shape_key else None,
        "threads": cfg.threads or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


async def _run(cfg: BenchConfig, result: dict[str, Any]) -> None:
    from mugpos.bench.cache import cache_tiers
    from mugpos.bench.cold import cold_start
    from mugpos.bench.dashboard import dashboard_section
    from mugpos.bench.door import door_section
    from mugpos.bench.stages import stages
    from mugpos.bench.throughput import throughput

    if "cold" in cfg.sections or "door" in cfg.sections:  # both time cold starts
        import mugpos
        from mugpos.bench.config import compile_bytecode

        result["bytecode"] = compile_bytecode(Path(mugpos.__file__).parent)
    # Cold start first, while this process holds no model threads that compete with the child.
    if "cold" in cfg.sections:
        with section(result, "cold_start") as out:
            await cold_start(cfg, out)
    if "door" in cfg.sections:  # before this process loads its own models (they would compete)
        with section(result, "door") as out:
            settings = settings_for(cfg, data_dir=cfg.workdir / "door-engine-data")
            out.update(await door_section(settings, child_env(cfg), cfg.images, cfg.workdir, quick=cfg.quick))
    if "rules" in cfg.sections:  # no models: the grammar's corpus and the placement solver
        from mugpos.bench.rules import rules_section

        with section(result, "rules") as out:
            rules_section(out, quick=cfg.quick)
    if "dashboard" in cfg.sections:  # a served analysis with and without an open dashboard
        with section(result, "dashboard") as out:
            out.update(await dashboard_section(child_env(cfg), cfg.images, Path.cwd(), quick=cfg.quick))
    app = None
    with section(result, "load") as out:
        app = await _load(cfg, out)
    if app is None:
        return
    try:
        frames = _decode_all(cfg.images)
        if "throughput" in cfg.sections:
            with section(result, "throughput") as out:
                await throughput(cfg, app.engine.detector, frames, out)
        if "stages" in cfg.sections:
            with section(result, "stages") as out:
                await stages(cfg, app, out)
        if "cache" in cfg.sections:
            with section(result, "cache") as out:
                await cache_tiers(cfg, app.engine, out)
    finally:
        await app.aclose()


async def _load(cfg: BenchConfig, out: dict[str, Any]) -> Any:
    """The engine as the server runs it (Mugpos -> Engine -> Detector), models warm."""
    from mugpos.operations import Mugpos

    t0 = time.perf_counter()
    app = Mugpos(settings_for(cfg, cache_l2_bytes=0))
    app.start()
    await app.engine.wait_ready()
    out["models_ready_s"] = round(time.perf_counter() - t0, 2)
    out["load_seconds"] = app.engine.load_seconds
    out["detector_identity"] = app.engine.detector.identity
    out["embedder"] = app.engine.embedder_note
    out["device"] = app.engine.detector.device
    return app


def _decode_all(paths: list[Path]) -> list[Any]:
    import numpy as np
    from PIL import Image

    frames = []
    for p in paths:
        with Image.open(p) as im:
            frames.append(np.asarray(im.convert("RGB")))
    return frames


def main(argv: list[str] | None = None) -> int:
    """`python -m mugpos.bench` (the `mugpos bench` command calls the same three functions)."""
    parser = argparse.ArgumentParser(prog="mugpos bench", description=__doc__.splitlines()[0])
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from mugpos.errors import MugposError

    try:
        result = run_bench(args)
    except MugposError as exc:
        print(
            json.dumps(exc.to_dict()) if args.json else exc.one_line(),
            file=sys.stdout if args.json else sys.stderr,
        )
        return exc.exit_code
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


__all__ = [
    "BenchConfig",
    "add_bench_arguments",
    "find_images",
    "main",
    "print_table",
    "run_bench",
    "synthetic_images",
]
