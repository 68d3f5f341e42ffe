"""Detector throughput: `conc` clients through the MicroBatcher (on and off) against plain Ultralytics."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from mugpos.bench.config import BenchConfig, log, torch_threads


async def throughput(cfg: BenchConfig, detector: Any, frames: list[Any], out: dict[str, Any]) -> None:

    n = cfg.items
    baseline_model = _baseline_model(cfg)
    plain1 = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=False)
    matched = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=True)
    runs: list[dict[str, Any]] = []
    for conc in cfg.concurrency:
        for enabled in (True, False):
            runs.append(await _throughput_run(cfg, detector, frames, conc, enabled))
    plain2 = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=False)
    torch_threads(cfg)
    plain = (plain1 + plain2) / 2
    out["runs"] = runs
    out["baseline"] = {
        "what": "plain Ultralytics YOLO(...).predict, one image per call, same model and photos, "
        "Ultralytics' own thread choice",
        "threads": _ultralytics_threads(cfg),
        "images_per_s": round(plain, 2),
        "before_and_after": [round(plain1, 2), round(plain2, 2)],
    }
    out["baseline_matched_threads"] = {
        "what": "the same, one by one, with the engine's thread count",
        "threads": cfg.threads or os.cpu_count(),
        "images_per_s": round(matched, 2),
    }
    on16 = next((r for r in runs if r["concurrency"] == 16 and r["batcher"] == "on"), None)
    off16 = next((r for r in runs if r["concurrency"] == 16 and r["batcher"] == "off"), None)
    if on16 is not None:
        out["batched16_vs_baseline"] = round(on16["images_per_s"] / plain, 3)
        out["batched16_vs_matched"] = round(on16["images_per_s"] / matched, 3)
    if on16 is not None and off16 is not None:
        out["batched16_vs_off16"] = round(on16["images_per_s"] / off16["images_per_s"], 3)


async def _throughput_run(
    cfg: BenchConfig, detector: Any, frames: list[Any], conc: int, enabled: bool
) -> dict[str, Any]:
    """`conc` clients do what the engine does per picture: fit it to a canvas bucket (in a thread,
    overlapping inference), submit through a MicroBatcher into the Detector, map boxes back."""
    from PIL import Image

    from mugpos.engine.batching import MicroBatcher, shape_key
    from mugpos.engine.letterbox import fit, unfit

    pictures = [Image.fromarray(f) for f in frames]

    torch_threads(cfg)
    batcher: MicroBatcher[Any, Any] = MicroBatcher(
        detector.detect,
        max_size=cfg.batch_max_size,
        max_wait_ms=cfg.batch_max_wait_ms,
        name=f"bench-{conc}-{'on' if enabled else 'off'}",
        enabled=enabled,
        key=shape_key if cfg.shape_key else None,
    )
    # Off the clock: the worker thread, and every batch shape this level produces (cuDNN tunes
    # each new input shape on first sight, which would otherwise be timed as throughput).
    warm = min(conc, cfg.batch_max_size) if enabled else 1
    canvases = [fit(p, cfg.imgsz).array for p in pictures]
    for _ in range(2):
        await asyncio.gather(*(batcher.submit(canvases[i % len(canvases)]) for i in range(warm * 2)))
    batcher.reset_stats()
    items = max(cfg.items, conc)
    counter = iter(range(items))

    async def client() -> None:
        for i in counter:
            fitted = await asyncio.to_thread(fit, pictures[i % len(pictures)], cfg.imgsz)
            unfit(await batcher.submit(fitted.array), fitted)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(conc)))
    dt = time.perf_counter() - t0
    st = batcher.stats()
    await batcher.aclose()
    log.info("bench: throughput c=%d batcher=%s %.1f img/s", conc, enabled, items / dt)
    return {
        "concurrency": conc,
        "batcher": "on" if enabled else "off",
        "images": items,
        "images_per_s": round(items / dt, 2),
        "mean_batch": round(st["mean_batch"], 2),
        "max_batch": st["max_batch"],
        "worker_busy_share": round(st["busy_s"] / dt, 3),
    }


def _ultralytics_threads(cfg: BenchConfig) -> int | None:
    """What plain Ultralytics leaves torch at after its first CPU predict (min(8, cores - 1))."""
    if not cfg.device.startswith("cpu"):
        return None
    from ultralytics.utils import NUM_THREADS

    return int(NUM_THREADS)


def _baseline_model(cfg: BenchConfig) -> Any:
    from ultralytics import YOLO

    return YOLO(cfg.detector, task="detect")


def _baseline_kwargs(cfg: BenchConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "imgsz": cfg.imgsz,
        "device": cfg.device,
        "verbose": False,
        "conf": 0.25,
        "iou": 0.5,
    }
    if cfg.half == "on" or (cfg.half == "auto" and cfg.device.startswith("cuda")):
        kw["half"] = True  # passing half=False makes Ultralytics 8.4 warn on every call
    return kw


def _baseline_run(cfg: BenchConfig, model: Any, frames: list[Any], n: int, *, matched: bool) -> float:
    """Images/s of plain `predict`, one call per image (BGR arrays, as Ultralytics expects).

    torch's thread count is process-wide, so the plain run sets what Ultralytics itself would
    leave after its first predict; the matched run uses the engine's count.
    """
    import torch

    kw = _baseline_kwargs(cfg)
    bgr = [f[..., ::-1] for f in frames]
    model.predict(bgr[0], **kw)  # first call builds the predictor
    if matched:
        torch_threads(cfg)
    elif (nt := _ultralytics_threads(cfg)) is not None:
        torch.set_num_threads(nt)
    model.predict(bgr[0], **kw)
    t0 = time.perf_counter()
    for i in range(n):
        model.predict(bgr[i % len(bgr)], **kw)
    return n / (time.perf_counter() - t0)
