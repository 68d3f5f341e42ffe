"""`mugpos bench`: every speed claim measured side by side in one run, offline.

Runs on random-initialised models (`--detector yolov8n.yaml`, `--clip-model ViT-B-32|none`) or real
exported weights (`../shared/data/models/yolov8n_int8.onnx`), on the CPU or a GPU. Sections:
per-stage latency of one analysis, detector throughput through the MicroBatcher (on and off) against
plain Ultralytics `predict` one by one on the same model and photos, cache hit latency per tier,
cold start (process start to MCP `initialize`, and to the first finished analysis) and peak memory.
Each section that cannot run (a module not there, no redis-server) says why instead of failing the run.
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("mugpos.bench")

DEFAULT_CONCURRENCY = (1, 4, 16, 64)
BARS = {
    "batched16_vs_baseline": (">=", 1.4),
    "beyond_model_share": ("<", 0.15),
    "l2_hit_speedup": (">=", 100.0),
    "initialize_s": ("<", 1.0),
}
RULES = ["keep mugs at least 10 cm from laptops", "keep mugs at least 5 cm from the table edge"]


# --- arguments --------------------------------------------------------------------------------
def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detector",
        default="yolov8n.yaml",
        help="YOLO weights: .yaml (random init, offline), .pt, .onnx or .engine (default: yolov8n.yaml)",
    )
    parser.add_argument(
        "--clip-model",
        default=None,
        help="open_clip architecture with random weights (e.g. ViT-B-32), or 'none' "
        "(default: ViT-B-32; none with --quick)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    parser.add_argument("--images", type=Path, default=None, help="folder of photos (default: test data)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and images (about a minute)")
    parser.add_argument("--repeat", type=int, default=None, help="repeats for medians (default 5; 3 quick)")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, DEFAULT_CONCURRENCY)),
        help="comma-separated concurrency levels for the throughput section (default 1,4,16,64)",
    )
    parser.add_argument(
        "--items", type=int, default=None, help="images per throughput run (default 64; 32 quick)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--half", choices=["auto", "on", "off"], default="auto", help="fp16 (auto: on CUDA)")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size (default 640)")
    parser.add_argument("--batch-max-size", type=int, default=16, help="MicroBatcher max batch (default 16)")
    parser.add_argument("--batch-max-wait-ms", type=float, default=4.0, help="MicroBatcher max wait (ms)")
    parser.add_argument(
        "--redis-url", default=None, help="Redis for the L1 tier (default: start redis-server)"
    )
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start subprocesses")
    parser.add_argument(
        "--sections",
        default="throughput,stages,cache,cold",
        help="which sections to run (default: all of throughput,stages,cache,cold)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


@dataclass
class BenchConfig:
    detector: str
    clip_model: str
    device: str
    images: list[Path]
    image_source: str
    quick: bool
    repeat: int
    concurrency: list[int]
    items: int
    threads: int | None
    half: str
    imgsz: int
    batch_max_size: int
    batch_max_wait_ms: float
    redis_url: str | None
    shape_key: bool
    sections: set[str]
    workdir: Path


def _config(args: argparse.Namespace, workdir: Path) -> BenchConfig:
    from mugpos.errors import ConfigError

    quick = bool(getattr(args, "quick", False))
    clip = args.clip_model or ("none" if quick else "ViT-B-32")
    try:
        conc = sorted({int(c) for c in str(args.concurrency).split(",") if c.strip()})
    except ValueError as exc:
        raise ConfigError(f"bad --concurrency {args.concurrency!r}", hint="use e.g. 1,4,16,64") from exc
    if not conc or min(conc) < 1:
        raise ConfigError("concurrency levels must be >= 1", hint="use e.g. 1,4,16,64")
    images, source = _find_images(args.images, workdir)
    sections = {s.strip() for s in str(args.sections).split(",") if s.strip()}
    if args.no_cold:
        sections.discard("cold")
    detector = args.detector
    if detector.endswith((".onnx", ".pt", ".engine")) and not Path(detector).exists():
        data_model = _test_data() / "models" / Path(detector).name if _test_data() else None
        if data_model is not None and data_model.exists():
            detector = str(data_model)
        elif os.sep in detector:
            raise ConfigError(f"weights not found: {detector}", hint="pass an existing file or yolov8n.yaml")
    if Path(detector).exists():  # child processes run in another folder
        detector = str(Path(detector).resolve())
    return BenchConfig(
        detector=detector,
        clip_model=clip,
        device=args.device,
        images=images,
        image_source=source,
        quick=quick,
        repeat=args.repeat or (3 if quick else 5),
        concurrency=conc,
        items=args.items or _default_items(quick, args.device),
        threads=args.threads,
        half=args.half,
        imgsz=args.imgsz,
        batch_max_size=args.batch_max_size,
        batch_max_wait_ms=args.batch_max_wait_ms,
        redis_url=args.redis_url,
        shape_key=not getattr(args, "no_shape_key", False),
        sections=sections,
        workdir=workdir,
    )


def _default_items(quick: bool, device: str) -> int:
    """Enough images per throughput run that a run lasts long enough to mean something."""
    if device.startswith("cuda"):
        return 256 if quick else 1024
    return 32 if quick else 64


def _test_data() -> Path | None:
    env = os.environ.get("MUGPOS_TEST_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    return next((c for c in candidates if (c / "coco-cups").is_dir()), None)


def _find_images(folder: Path | None, workdir: Path) -> tuple[list[Path], str]:
    from mugpos.errors import ConfigError

    exts = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    if folder is not None:
        folder = folder.resolve()
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in exts) if folder.is_dir() else []
        if not found:
            raise ConfigError(f"no images in {folder}", hint="pass a folder with .jpg/.png photos")
        return found, str(folder)
    data = _test_data()
    if data is not None:
        found = sorted((data / "coco-cups" / "images").glob("*.jpg"))
        coffee = data / "photos" / "coffee.png"
        if coffee.exists():
            found.append(coffee)
        if found:
            return found, f"{data} (coco-cups + coffee.png)"
    return _synthetic_images(workdir / "synthetic"), "synthetic (test data not found)"


def _synthetic_images(out: Path, n: int = 8) -> list[Path]:
    """Plain random-noise photos with a few solid blocks: enough for timing, with no data needed."""
    import numpy as np
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = (480, 640) if i % 3 else (427, 640)
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for _ in range(4):
            y, x = rng.integers(0, h - 100), rng.integers(0, w - 100)
            arr[y : y + 90, x : x + 90] = rng.integers(0, 255, 3, dtype=np.uint8)
        p = out / f"synthetic_{i}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        paths.append(p)
    return paths


def _settings(cfg: BenchConfig, **overrides: Any) -> Any:
    from mugpos.settings import Settings

    base: dict[str, Any] = {
        "detector_weights": cfg.detector,
        "detector_imgsz": cfg.imgsz,
        "embedder": "none" if cfg.clip_model == "none" else "clip",
        "clip_model": cfg.clip_model if cfg.clip_model != "none" else "ViT-B-32",
        "clip_pretrained": "none",
        "device": cfg.device,
        "half": cfg.half,
        "threads": cfg.threads,
        "batch_max_size": cfg.batch_max_size,
        "batch_max_wait_ms": cfg.batch_max_wait_ms,
        "data_dir": cfg.workdir / "data",
        "allowed_dirs": sorted({p.parent for p in cfg.images}),
        "redis_url": None,
        "layout_store": "embedded",
        "rule_store": "embedded",
        "blob_store": "local",
        "rules_llm": None,
    }
    base.update(overrides)
    return Settings(**base)


def _child_env(cfg: BenchConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(
        {
            "YOLO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "MUGPOS_DETECTOR_WEIGHTS": cfg.detector,
            "MUGPOS_DETECTOR_IMGSZ": str(cfg.imgsz),
            "MUGPOS_EMBEDDER": "none" if cfg.clip_model == "none" else "clip",
            "MUGPOS_CLIP_PRETRAINED": "none",
            "MUGPOS_DEVICE": cfg.device,
            "MUGPOS_HALF": cfg.half,
            "MUGPOS_DATA_DIR": str(cfg.workdir / "child-data"),
            "MUGPOS_ALLOWED_DIRS": os.pathsep.join(sorted({str(p.parent) for p in cfg.images})),
        }
    )
    if cfg.clip_model != "none":
        env["MUGPOS_CLIP_MODEL"] = cfg.clip_model
    if cfg.threads:
        env["MUGPOS_THREADS"] = str(cfg.threads)
    return env


# --- helpers ----------------------------------------------------------------------------------
def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3) if xs else float("nan")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@contextlib.contextmanager
def _section(result: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Run one section; a failure is recorded as a skip with its reason instead of ending the run."""
    out: dict[str, Any] = {}
    result[name] = out
    t0 = time.perf_counter()
    log.info("bench: %s ...", name)
    try:
        yield out
    except _Skip as exc:
        out.clear()
        out["skipped"] = str(exc)
    except Exception as exc:
        log.exception("bench section %s failed", name)
        out["error"] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
    out["section_s"] = round(time.perf_counter() - t0, 2)


class _Skip(Exception):
    pass


def _torch_threads(cfg: BenchConfig) -> int | None:
    """Ultralytics sets torch to 1 thread on its first predict: put the chosen count back."""
    if not cfg.device.startswith("cpu"):
        return None
    import torch

    n = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


# --- the run ----------------------------------------------------------------------------------
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
        cfg = _config(args, Path(tmp))
        result: dict[str, Any] = {"config": _describe(cfg)}
        asyncio.run(_run(cfg, result))
        result["memory"] = {"peak_rss_mb": round(_peak_rss_mb(resource.RUSAGE_SELF), 1)}
        result["bars"] = _bars(result)
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
    # Cold start first, while this process holds no model threads that compete with the child.
    if "cold" in cfg.sections:
        with _section(result, "cold_start") as out:
            await _cold(cfg, out)
    app = engine = detector = None
    with _section(result, "load") as out:
        app, engine, detector = await _load(cfg, out)
    if app is None and detector is None:
        return
    try:
        frames = _decode_all(cfg.images)
        if "throughput" in cfg.sections:
            with _section(result, "throughput") as out:
                await _throughput(cfg, detector, frames, out)
        if "stages" in cfg.sections:
            with _section(result, "stages") as out:
                if app is None:
                    raise _Skip("mugpos.operations is not importable yet")
                await _stages(cfg, app, out)
        if "cache" in cfg.sections:
            with _section(result, "cache") as out:
                if engine is None:
                    raise _Skip("the engine pipeline is not importable yet")
                await _cache(cfg, engine, out)
    finally:
        if app is not None:
            await app.aclose()


async def _load(cfg: BenchConfig, out: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The engine as the server runs it (Mugpos -> Engine -> Detector); the Detector alone as fallback."""
    settings = _settings(cfg, cache_l2_bytes=0)
    t0 = time.perf_counter()
    try:
        from mugpos.operations import Mugpos
    except ImportError as exc:
        out["note"] = f"operations unavailable ({exc}); benchmarking the Detector directly"
        from mugpos.engine.detector import Detector

        det = Detector(settings)
        det.load()
        det.warmup()
        out["detector_s"] = round(time.perf_counter() - t0, 2)
        out["threads"] = _torch_threads(cfg)
        return None, None, det
    app = Mugpos(settings)
    app.start()
    await app.engine.wait_ready()
    out["models_ready_s"] = round(time.perf_counter() - t0, 2)
    out["load_seconds"] = app.engine.load_seconds
    out["detector_identity"] = app.engine.detector.identity
    out["embedder"] = app.engine.embedder_note
    out["device"] = app.engine.detector.device
    return app, app.engine, app.engine.detector


def _decode_all(paths: list[Path]) -> list[Any]:
    import numpy as np
    from PIL import Image

    frames = []
    for p in paths:
        with Image.open(p) as im:
            frames.append(np.asarray(im.convert("RGB")))
    return frames


# --- throughput -------------------------------------------------------------------------------
async def _throughput(cfg: BenchConfig, detector: Any, frames: list[Any], out: dict[str, Any]) -> None:

    n = cfg.items
    baseline_model = _baseline_model(cfg)
    plain1 = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=False)
    matched = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=True)
    runs: list[dict[str, Any]] = []
    for conc in cfg.concurrency:
        for enabled in (True, False):
            runs.append(await _throughput_run(cfg, detector, frames, conc, enabled))
    plain2 = await asyncio.to_thread(_baseline_run, cfg, baseline_model, frames, n, matched=False)
    _torch_threads(cfg)
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

    _torch_threads(cfg)
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
        _torch_threads(cfg)
    elif (nt := _ultralytics_threads(cfg)) is not None:
        torch.set_num_threads(nt)
    model.predict(bgr[0], **kw)
    t0 = time.perf_counter()
    for i in range(n):
        model.predict(bgr[i % len(bgr)], **kw)
    return n / (time.perf_counter() - t0)


# --- per-stage latency ------------------------------------------------------------------------
async def _stages(cfg: BenchConfig, app: Any, out: dict[str, Any]) -> None:
    """One analysis through Mugpos.analyze (rules and annotation included, storage off), median of N."""
    engine = app.engine
    path = str(next((p for p in cfg.images if p.suffix.lower() in (".jpg", ".jpeg")), cfg.images[0]))
    keys = ("decode_ms", "detect_ms", "embed_ms", "geometry_ms", "rules_ms", "annotate_ms")
    per: dict[str, list[float]] = {k: [] for k in (*keys, "serialise_ms", "total_ms", "model_ms")}
    rules = await _usable_rules(app)
    await app.analyze(path, rules=rules, store=False, use_saved_rules=False)  # warm every stage
    for _ in range(cfg.repeat):
        busy0 = _busy(engine)
        t0 = time.perf_counter()
        outcome = await app.analyze(path, rules=rules, store=False, use_saved_rules=False)
        t1 = time.perf_counter()
        outcome.result.model_dump_json()
        total = (time.perf_counter() - t0) * 1000.0
        tm = outcome.result.timings
        for k in keys:
            per[k].append(float(getattr(tm, k)))
        per["serialise_ms"].append((time.perf_counter() - t1) * 1000.0)
        per["total_ms"].append(total)
        per["model_ms"].append((_busy(engine) - busy0) * 1000.0)
        if tm.cache:
            raise RuntimeError("stage timings hit the cache; it should be off for this section")
    med = {k: _median(v) for k, v in per.items()}
    shares = [1.0 - m / t for m, t in zip(per["model_ms"], per["total_ms"], strict=True) if t > 0]
    out["image"] = Path(path).name
    out["rules"] = len(rules)
    out["median_ms"] = med
    out["beyond_model_share"] = round(statistics.median(shares), 4) if shares else None
    out["beyond_model_note"] = (
        "1 - (detector + embedder calls in their worker threads, incl. Ultralytics pre/post-processing) "
        "/ the whole analysis incl. load, rules, annotation and JSON serialisation"
    )


async def _usable_rules(app: Any) -> list[str]:
    """The rules the parser understands (the rule core may still be landing)."""
    good = []
    for text in RULES:
        try:
            await app.explain_rule(text)
            good.append(text)
        except Exception as exc:  # a missing grammar must not stop the timing
            log.info("bench: rule %r not usable: %s", text, getattr(exc, "message", exc))
    return good


def _busy(engine: Any) -> float:
    b = engine.status().get("batching", {})
    return sum((b.get(k) or {}).get("busy_s", 0.0) for k in ("detector", "embedder"))


# --- cache tiers ------------------------------------------------------------------------------
async def _cache(cfg: BenchConfig, engine: Any, out: dict[str, Any]) -> None:
    from mugpos.engine.images import load_image
    from mugpos.stores.cache import DualCache

    settings = _settings(cfg)
    imgs = [await load_image(str(p), settings) for p in cfg.images[: max(2, min(4, cfg.repeat))]]
    original = engine.cache
    tiers: dict[str, Any] = {}
    try:
        engine.cache = DualCache(_settings(cfg, cache_l2_bytes=256 * 1024 * 1024))
        tiers["l2"] = await _hit_vs_miss(engine, imgs, hits=40 if not cfg.quick else 20, px=1.0)
        with _redis(cfg) as (url, note):
            if url is None:
                tiers["l1"] = {"skipped": note}
            else:
                engine.cache = DualCache(_settings(cfg, cache_l2_bytes=0, redis_url=url))
                l1 = await _hit_vs_miss(engine, imgs, hits=40 if not cfg.quick else 20, px=2.0)
                l1["redis"] = note
                l1["status"] = engine.cache.status()["l1"].degraded
                await engine.cache.aclose()
                tiers["l1"] = l1
    finally:
        engine.cache = original
    out.update(tiers)


async def _hit_vs_miss(engine: Any, imgs: list[Any], *, hits: int, px: float) -> dict[str, Any]:
    """Misses: fresh keys (px_per_cm is part of the key). Hits: the same calls again."""
    misses, hit_times, tiers = [], [], set()
    for img in imgs:
        t0 = time.perf_counter()
        a = await engine.analyze(img, px_per_cm=px)
        misses.append(_ms(t0))
        if a.timings.cache:
            raise RuntimeError("a first call was answered from the cache")
    for i in range(hits):
        img = imgs[i % len(imgs)]
        t0 = time.perf_counter()
        a = await engine.analyze(img, px_per_cm=px)
        hit_times.append(_ms(t0))
        tiers.add(a.timings.cache)
    miss, hit = _median(misses), _median(hit_times)
    return {
        "miss_ms": miss,
        "hit_ms": hit,
        "speedup": round(miss / hit, 1) if hit > 0 else None,
        "answered_by": sorted(str(t) for t in tiers),
    }


@contextlib.contextmanager
def _redis(cfg: BenchConfig) -> Iterator[tuple[str | None, str]]:
    """The given Redis, or a private redis-server on a free port (stopped afterwards), or none."""
    if cfg.redis_url:
        yield cfg.redis_url, "given by --redis-url"
        return
    exe = shutil.which("redis-server")
    if exe is None:
        yield None, "no --redis-url and no redis-server on PATH"
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cfg.workdir,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", f"private redis-server on port {port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


# --- cold start -------------------------------------------------------------------------------
async def _cold(cfg: BenchConfig, out: dict[str, Any]) -> None:
    import importlib.util

    env = _child_env(cfg)
    runs = 3 if cfg.quick else 5
    if importlib.util.find_spec("mugpos.__main__") is None:
        out["initialize"] = {"skipped": "no `python -m mugpos` entry point yet"}
    else:
        try:
            times = [await _time_initialize(env, cfg.workdir) for _ in range(runs)]
            out["initialize"] = {"median_s": _median(times), "runs_s": [round(t, 3) for t in times]}
        except Exception as exc:
            out["initialize"] = {"error": f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"}
    out["first_analysis"] = await asyncio.to_thread(_time_first_analysis, cfg, env)


async def _time_initialize(env: dict[str, str], cwd: Path) -> float:
    """Process start -> the `initialize` answer, over stdio with the MCP SDK client."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mugpos", "serve", "--transport", "stdio"], env=env, cwd=cwd
    )
    with open(os.devnull, "w") as devnull:
        t0 = time.perf_counter()
        async with (
            stdio_client(params, errlog=devnull) as (read, write),
            ClientSession(read, write) as session,
        ):
            await asyncio.wait_for(session.initialize(), 60)
            elapsed = time.perf_counter() - t0
    return elapsed


_ONE_ANALYSIS = """
import asyncio, json, sys
from mugpos.operations import Mugpos
async def main():
    app = Mugpos()
    app.start()
    out = await app.analyze(sys.argv[1], store=False, use_saved_rules=False)
    print(out.result.model_dump_json())
    await app.aclose()
asyncio.run(main())
"""


def _time_first_analysis(cfg: BenchConfig, env: dict[str, str]) -> dict[str, Any]:
    """Process start -> first finished analysis, via `python -m mugpos analyze --json` when it exists."""
    import importlib.util

    image = str(cfg.images[0])
    if importlib.util.find_spec("mugpos.__main__") is not None:
        cmd = [sys.executable, "-m", "mugpos", "analyze", image, "--json"]
        how = "python -m mugpos analyze IMAGE --json"
    else:
        cmd = [sys.executable, "-c", _ONE_ANALYSIS, image]
        how = "python -c (Mugpos().analyze), no CLI entry point yet"
    out_path = cfg.workdir / "first_analysis.out"
    err_path = cfg.workdir / "first_analysis.err"
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=cfg.workdir)
        peak_kb = 0
        while proc.poll() is None:  # VmHWM: the child's own peak (ru_maxrss inherits the parent's)
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
    res: dict[str, Any] = {
        "how": how,
        "seconds": round(elapsed, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1) or None,
    }
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        res["error"] = f"exit {proc.returncode}: {' | '.join(tail)}"
        return res
    try:
        doc = json.loads(out_path.read_text())
        res["objects"] = len((doc.get("scene") or {}).get("objects", doc.get("objects", [])))
    except (json.JSONDecodeError, AttributeError):
        res["error"] = "stdout was not one JSON document"
    return res


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


# --- bars and the table -----------------------------------------------------------------------
def _bars(result: dict[str, Any]) -> dict[str, Any]:
    measured = {
        "batched16_vs_baseline": (result.get("throughput") or {}).get("batched16_vs_baseline"),
        "beyond_model_share": (result.get("stages") or {}).get("beyond_model_share"),
        "l2_hit_speedup": ((result.get("cache") or {}).get("l2") or {}).get("speedup"),
        "initialize_s": ((result.get("cold_start") or {}).get("initialize") or {}).get("median_s"),
    }
    bars = {}
    for name, (op, bar) in BARS.items():
        v = measured[name]
        ok = None if v is None else (v >= bar if op == ">=" else v < bar)
        bars[name] = {"value": v, "bar": f"{op} {bar}", "pass": ok}
    return bars


def print_table(result: dict[str, Any], file: Any = None) -> None:
    """The human-readable report of a `run_bench` result."""
    f = file or sys.stdout
    w: Callable[[str], None] = lambda s="": print(s, file=f)  # noqa: E731
    c = result.get("config", {})
    w(
        f"mugpos bench  detector={c.get('detector')}  clip={c.get('clip_model')}  device={c.get('device')}"
        f"  threads={c.get('threads')}  torch={c.get('torch')}"
    )
    w(f"images: {c.get('images')} from {c.get('image_source')}  repeat={c.get('repeat')}")
    if c.get("cuda"):
        w(f"gpu: {c['cuda']}")
    load = result.get("load", {})
    if load:
        w(f"models ready: {load.get('models_ready_s', load.get('detector_s'))} s  {_skip_note(load)}")
    w()
    tp = result.get("throughput", {})
    w("detector throughput (images/s)")
    if "runs" in tp:
        w(f"  {'concurrency':>11} {'batcher on':>11} {'mean batch':>10} {'batcher off':>12}")
        by = {(r["concurrency"], r["batcher"]): r for r in tp["runs"]}
        for conc in sorted({r["concurrency"] for r in tp["runs"]}):
            on, off = by.get((conc, "on"), {}), by.get((conc, "off"), {})
            w(
                f"  {conc:>11} {on.get('images_per_s', '-'):>11} {on.get('mean_batch', '-'):>10}"
                f" {off.get('images_per_s', '-'):>12}"
            )
        b = tp["baseline"]
        w(f"  baseline (plain Ultralytics predict, one by one): {b['images_per_s']} {b['before_and_after']}")
        w(
            f"  batched@16 / baseline: {tp.get('batched16_vs_baseline')}x   on/off@16: {tp.get('batched16_vs_off16')}x"
        )
    else:
        w(f"  {_skip_note(tp)}")
    w()
    st = result.get("stages", {})
    w("one analysis, median ms")
    if "median_ms" in st:
        med = st["median_ms"]
        order = (
            "decode_ms",
            "detect_ms",
            "embed_ms",
            "geometry_ms",
            "rules_ms",
            "annotate_ms",
            "serialise_ms",
        )
        w("  " + "  ".join(f"{k[:-3]}={med[k]}" for k in order))
        w(
            f"  total={med['total_ms']}  model calls={med['model_ms']}  image={st.get('image')} rules={st.get('rules')}"
        )
        w(f"  share beyond the model calls: {100 * st['beyond_model_share']:.1f} %")
    else:
        w(f"  {_skip_note(st)}")
    w()
    ca = result.get("cache", {})
    w("cache (engine.analyze), median ms")
    for tier in ("l2", "l1"):
        t = ca.get(tier)
        if t is None:
            continue
        if "hit_ms" in t:
            w(
                f"  {tier}: miss={t['miss_ms']}  hit={t['hit_ms']}  speedup={t['speedup']}x  ({t['answered_by']})"
            )
        else:
            w(f"  {tier}: {_skip_note(t)}")
    if not ca or ("l2" not in ca and "l1" not in ca):
        w(f"  {_skip_note(ca)}")
    w()
    cold = result.get("cold_start", {})
    w("cold start")
    if cold and "initialize" in cold:
        ini = cold["initialize"]
        w(f"  process start -> MCP initialize: {ini.get('median_s', _skip_note(ini))} s")
        fa = cold.get("first_analysis", {})
        extra = f"  error: {fa['error']}" if "error" in fa else ""
        w(
            f"  process start -> first analysis: {fa.get('seconds')} s  peak RSS {fa.get('peak_rss_mb')} MB{extra}"
        )
    else:
        w(f"  {_skip_note(cold)}")
    w(f"peak RSS of this bench process: {result.get('memory', {}).get('peak_rss_mb')} MB")
    w()
    w("bars")
    for name, b in result.get("bars", {}).items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[b["pass"]]
        w(f"  {name:<24} {b['value']!s:>10}  {b['bar']:<8} {verdict}")
    w(f"wall: {result.get('wall_s')} s")


def _skip_note(d: dict[str, Any]) -> str:
    if "skipped" in d:
        return f"skipped: {d['skipped']}"
    if "error" in d:
        return f"error: {d['error']}"
    return d.get("note", "")


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


if __name__ == "__main__":
    raise SystemExit(main())
