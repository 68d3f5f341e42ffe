"""The GPU benchmark behind `benchmarks/gpu.sh` (also runs on a CPU with `--device cpu`).

Measures what decides how busy the engine keeps a GPU: YOLO throughput at batch sizes 1-64 in fp32
and fp16 (raw network and the whole Ultralytics predict), pinned vs pageable host-to-device copies,
a TensorRT engine if one builds within its time budget, and JPEG decoding on the device
(`torchvision.io.decode_jpeg(device="cuda")`) against PIL. Random-initialised weights and synthetic
photos when the test data is absent, so it needs nothing from the network.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timeit(fn: Callable[[], Any], device: str, *, warmup: int = 2, iters: int = 5) -> float:
    """Best-of-`iters` seconds per call (best, not mean: other tenants only ever add time)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _photos(n: int) -> tuple[list[bytes], str]:
    """JPEG bytes: the test data's coco-cups photos if present, else synthetic 640x480 ones."""
    data = os.environ.get("MUGPOS_TEST_DATA")
    roots = [Path(data)] if data else []
    roots += [Path.cwd() / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for root in roots:
        jpgs = sorted((root / "coco-cups" / "images").glob("*.jpg"))
        if jpgs:
            return [p.read_bytes() for p in jpgs][:n], f"{root}/coco-cups"
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(min(n, 8)):
        arr = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out, "synthetic 640x480 JPEGs"


# --- detector ---------------------------------------------------------------------------------
def bench_detector(weights: str, device: str, batches: list[int], frames: list[Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from ultralytics import YOLO

    cuda = device.startswith("cuda")
    out: dict[str, Any] = {"raw": [], "predict": []}
    yolo = YOLO(weights, task="detect")
    net = yolo.model.fuse().eval().to(device) if hasattr(yolo.model, "fuse") else None
    dtypes = [("fp32", torch.float32)] + ([("fp16", torch.float16)] if cuda else [])
    for name, dt in dtypes:
        if net is None:
            break
        m = net.to(dt)
        for b in batches:
            x = torch.rand(b, 3, 480, 640, device=device, dtype=dt)
            with torch.inference_mode():
                s = _timeit(lambda m=m, x=x: m(x), device, iters=5 if cuda else 2, warmup=2 if cuda else 1)
            out["raw"].append(
                {"dtype": name, "batch": b, "ms": round(s * 1000, 2), "images_per_s": round(b / s, 1)}
            )
            print(f"raw {name} b={b}: {b / s:.1f} img/s", file=sys.stderr)
        m.to(torch.float32)
    bgr = [f[..., ::-1] for f in frames]
    for name in ["fp32"] + (["fp16"] if cuda else []):
        kw: dict[str, Any] = {"device": device, "verbose": False, "imgsz": 640}
        if name == "fp16":
            kw["half"] = True
        yolo.predict(bgr[0], **kw)
        if not cuda:
            torch.set_num_threads(os.cpu_count() or 1)
        for b in batches:
            imgs = [bgr[i % len(bgr)] for i in range(b)]
            s = _timeit(
                lambda imgs=imgs, kw=kw: yolo.predict(imgs, **kw), device, iters=3 if cuda else 1, warmup=1
            )
            out["predict"].append(
                {"dtype": name, "batch": b, "ms": round(s * 1000, 2), "images_per_s": round(b / s, 1)}
            )
            print(f"predict {name} b={b}: {b / s:.1f} img/s", file=sys.stderr)
    out["engine_detect"] = _engine_detect(weights, device, batches, frames)
    if cuda:
        frames_u8 = np.stack([np.ascontiguousarray(frames[0])] * 16)
        pageable = torch.from_numpy(frames_u8)
        pinned = pageable.pin_memory()
        out["h2d_16_frames_ms"] = {
            "pageable": round(_timeit(lambda: pageable.to(device), device) * 1000, 3),
            "pinned": round(_timeit(lambda: pinned.to(device, non_blocking=True), device) * 1000, 3),
        }
    return out


def _engine_detect(weights: str, device: str, batches: list[int], frames: list[Any]) -> list[dict[str, Any]]:
    """mugpos' own Detector.detect (RGB in, Detections out) at the same batch sizes: its overhead."""
    from mugpos.engine.detector import Detector
    from mugpos.settings import Settings

    det = Detector(Settings(detector_weights=weights, device=device, embedder="none"))
    det.load()
    det.warmup()
    rows = []
    for b in batches:
        imgs = [frames[i % len(frames)] for i in range(b)]
        s = _timeit(
            lambda imgs=imgs: det.detect(imgs), device, iters=3 if device.startswith("cuda") else 1, warmup=1
        )
        rows.append({"dtype": "fp16" if det.half else "fp32", "batch": b, "images_per_s": round(b / s, 1)})
        print(f"engine detect b={b}: {b / s:.1f} img/s", file=sys.stderr)
    return rows


def bench_tensorrt(
    weights: str, device: str, batches: list[int], frames: list[Any], budget_s: float
) -> dict[str, Any]:
    """Build a dynamic-batch fp16 engine in a child process (so a slow build can be cut off)."""
    if not device.startswith("cuda"):
        return {"skipped": "TensorRT needs CUDA"}
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return {"skipped": "tensorrt is not installed on this machine"}
    work = Path(os.environ.get("BENCH_WORK", "/tmp")) / "mugpos-trt"
    work.mkdir(parents=True, exist_ok=True)
    code = (
        "from pathlib import Path; from mugpos.engine.export import export_detector; "
        f"print(export_detector({weights!r}, 'engine', imgsz=640, half=True, dynamic=True, "
        f"batch={max(batches)}, device={device!r}, out_dir=Path({str(work)!r})))"
    )
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget_s)
    except subprocess.TimeoutExpired:
        return {"skipped": f"engine build did not finish within {budget_s:.0f} s"}
    build_s = round(time.perf_counter() - t0, 1)
    if proc.returncode != 0:
        return {
            "skipped": f"engine build failed: {proc.stderr.strip().splitlines()[-1:]}",
            "build_s": build_s,
        }
    engine = proc.stdout.strip().splitlines()[-1]
    from ultralytics import YOLO

    yolo = YOLO(engine, task="detect")
    bgr = [f[..., ::-1] for f in frames]
    rows = []
    for b in batches:
        imgs = [bgr[i % len(bgr)] for i in range(b)]
        s = _timeit(
            lambda imgs=imgs: yolo.predict(imgs, device=device, half=True, verbose=False), device, iters=3
        )
        rows.append({"batch": b, "ms": round(s * 1000, 2), "images_per_s": round(b / s, 1)})
    return {"build_s": build_s, "engine": engine, "predict": rows}


# --- decode -----------------------------------------------------------------------------------
def bench_decode(jpegs: list[bytes], device: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.io import decode_jpeg

    def pil() -> None:
        for b in jpegs:
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))

    datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in jpegs]
    n = len(jpegs)
    out = {"images": n, "pil_ms_per_image": round(_timeit(pil, "cpu", iters=3) / n * 1000, 3)}
    out["torchvision_cpu_ms_per_image"] = round(
        _timeit(lambda: decode_jpeg(datas), "cpu", iters=3) / n * 1000, 3
    )
    if device.startswith("cuda"):
        s = _timeit(lambda: decode_jpeg(datas, device=device), device, iters=5)
        out["torchvision_cuda_batched_ms_per_image"] = round(s / n * 1000, 3)
        s1 = _timeit(lambda: [decode_jpeg(d, device=device) for d in datas], device, iters=3)
        out["torchvision_cuda_one_by_one_ms_per_image"] = round(s1 / n * 1000, 3)
        out["device_decode_faster"] = out["torchvision_cuda_batched_ms_per_image"] < out["pil_ms_per_image"]
    return out


# --- report -----------------------------------------------------------------------------------
def print_table(res: dict[str, Any]) -> None:
    env = res["env"]
    print(
        f"GPU bench  device={env['device']} ({env.get('gpu') or 'no GPU'})  torch={env['torch']}  weights={env['weights']}"
    )
    det = res.get("detector", {})
    if "error" in det:
        print(f"detector: error: {det['error']}")
    for kind in ("raw", "predict"):
        rows = det.get(kind, [])
        if not rows:
            continue
        dts = sorted({r["dtype"] for r in rows})
        print(
            f"\nYOLO {kind} ({'network forward on device tensors' if kind == 'raw' else 'Ultralytics predict, lists of photos'}), images/s"
        )
        print("  batch " + "".join(f"{d:>12}" for d in dts))
        for b in sorted({r["batch"] for r in rows}):
            cells = {r["dtype"]: r["images_per_s"] for r in rows if r["batch"] == b}
            print(f"  {b:>5} " + "".join(f"{cells.get(d, '-'):>12}" for d in dts))
    if det.get("engine_detect"):
        print("\nmugpos Detector.detect (RGB arrays in, Detections out), images/s")
        for r in det["engine_detect"]:
            print(f"  batch {r['batch']:>3} ({r['dtype']}): {r['images_per_s']}")
    if "h2d_16_frames_ms" in det:
        h = det["h2d_16_frames_ms"]
        print(
            f"\nhost->device, 16 frames 480x640 uint8: pageable {h['pageable']} ms, pinned {h['pinned']} ms"
        )
    trt = res.get("tensorrt", {})
    print()
    if "predict" in trt:
        print(f"TensorRT fp16 engine (built in {trt['build_s']} s), images/s:")
        for r in trt["predict"]:
            print(f"  batch {r['batch']:>3}: {r['images_per_s']}")
    else:
        print(f"TensorRT: {trt.get('skipped', trt.get('error'))}")
    dec = res.get("decode", {})
    print(
        f"\nJPEG decode, ms per image ({dec.get('images')} photos): "
        + ", ".join(
            f"{k.replace('_ms_per_image', '')}={v}" for k, v in dec.items() if k.endswith("_ms_per_image")
        )
    )
    print(f"\nwall: {res.get('wall_s')} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--weights", default="yolov8n.yaml")
    p.add_argument("--batches", default="1,2,4,8,16,32,64")
    p.add_argument("--trt-budget-s", type=float, default=150.0)
    p.add_argument("--no-trt", action="store_true")
    p.add_argument("--json-out", type=Path, default=None)
    a = p.parse_args(argv)
    import torch

    t0 = time.perf_counter()
    cuda = a.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu", file=sys.stderr)
        return 2
    batches = [int(x) for x in a.batches.split(",") if x.strip()]
    jpegs, source = _photos(16)
    import numpy as np
    from PIL import Image

    frames = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in jpegs]
    res: dict[str, Any] = {
        "env": {
            "device": a.device,
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "torch": torch.__version__,
            "weights": a.weights,
            "photos": source,
            "cpu_count": os.cpu_count(),
        }
    }
    for name, fn in (
        ("decode", lambda: bench_decode(jpegs, a.device)),
        ("detector", lambda: bench_detector(a.weights, a.device, batches, frames)),
        (
            "tensorrt",
            lambda: (
                {"skipped": "--no-trt"}
                if a.no_trt
                else bench_tensorrt(a.weights, a.device, batches, frames, a.trt_budget_s)
            ),
        ),
    ):
        try:
            res[name] = fn()
        except Exception as exc:  # one broken section must not hide the others
            res[name] = {"error": f"{type(exc).__name__}: {exc}"}
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    if a.json_out:
        a.json_out.parent.mkdir(parents=True, exist_ok=True)
        a.json_out.write_text(json.dumps(res, indent=1))
    print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
