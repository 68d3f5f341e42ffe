"""The bench's configuration: its command-line arguments, the photos it times, and small shared helpers."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("mugpos.bench")

DEFAULT_CONCURRENCY = (1, 4, 16, 64)


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
        default="throughput,stages,cache,cold,door,dashboard,rules",
        help="which sections to run (default: all of throughput,stages,cache,cold,door,dashboard,rules)",
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


def config_from_args(args: argparse.Namespace, workdir: Path) -> BenchConfig:
    from mugpos.errors import ConfigError

    quick = bool(getattr(args, "quick", False))
    clip = args.clip_model or ("none" if quick else "ViT-B-32")
    try:
        conc = sorted({int(c) for c in str(args.concurrency).split(",") if c.strip()})
    except ValueError as exc:
        raise ConfigError(f"bad --concurrency {args.concurrency!r}", hint="use e.g. 1,4,16,64") from exc
    if not conc or min(conc) < 1:
        raise ConfigError("concurrency levels must be >= 1", hint="use e.g. 1,4,16,64")
    images, source = find_images(args.images, workdir)
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


def find_images(folder: Path | None, workdir: Path) -> tuple[list[Path], str]:
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
    return synthetic_images(workdir / "synthetic"), "synthetic (test data not found)"


def synthetic_images(out: Path, n: int = 8) -> list[Path]:
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


def settings_for(cfg: BenchConfig, **overrides: Any) -> Any:
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


def compile_bytecode(package_dir: Path) -> str:
    """Compile a mugpos tree's bytecode before timing a cold start, as an installed package has it
    (pip compiles on install, the Dockerfile's uv with UV_COMPILE_BYTECODE=1). An editable checkout
    run with PYTHONDONTWRITEBYTECODE=1 (this machine's default) would otherwise compile every module
    it imports at every start (~0.25 s here), a cost no deployed worker pays. Returns what was done."""
    import compileall

    ok = compileall.compile_dir(str(package_dir), quiet=1, workers=1)
    return "compiled" if ok else "compiled with errors"


def child_env(cfg: BenchConfig) -> dict[str, str]:
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
def free_port() -> int:
    """A loopback port nothing listens on yet, for a server this run starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3) if xs else float("nan")


def elapsed_ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@contextlib.contextmanager
def section(result: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Run one section; a failure is recorded as a skip with its reason instead of ending the run."""
    out: dict[str, Any] = {}
    result[name] = out
    t0 = time.perf_counter()
    log.info("bench: %s ...", name)
    try:
        yield out
    except Skip as exc:
        out.clear()
        out["skipped"] = str(exc)
    except Exception as exc:
        log.exception("bench section %s failed", name)
        out["error"] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
    out["section_s"] = round(time.perf_counter() - t0, 2)


class Skip(Exception):
    pass


def torch_threads(cfg: BenchConfig) -> int | None:
    """Ultralytics sets torch to 1 thread on its first predict: put the chosen count back."""
    if not cfg.device.startswith("cpu"):
        return None
    import torch

    n = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
