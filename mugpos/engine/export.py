"""Export the detector to ONNX (CPU, ONNX Runtime) or a TensorRT engine (NVIDIA GPUs).

ONNX Runtime runs the raw network level with torch or a little faster on CPU; TensorRT with fp16 is
the fastest path on a GPU. Both go through Ultralytics' own exporter so the result loads back with
`YOLO(path)` (and so with `MUGPOS_DETECTOR_WEIGHTS=path`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Literal

from mugpos.errors import ConfigError, ModelError

ExportFormat = Literal["onnx", "engine"]


def export_detector(
    weights: str,
    fmt: ExportFormat,
    *,
    imgsz: int | tuple[int, int] = 640,
    half: bool = False,
    dynamic: bool = False,
    batch: int = 1,
    device: str = "cpu",
    out_dir: Path | None = None,
) -> Path:
    """Export `weights` (.pt, or .yaml for a random-initialised model) and return the file written.

    `dynamic` lets the exported model take any batch and image size (ONNX: pads nothing; TensorRT:
    an optimisation profile up to `batch`). `half` needs a CUDA device. The file lands beside the
    weights (Ultralytics' choice) unless `out_dir` is given.
    """
    device = _check_export(weights, fmt, half=half, batch=batch, device=device)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    try:
        model = YOLO(weights, task="detect")
        out = model.export(
            format=fmt,
            imgsz=imgsz,
            half=half,
            dynamic=dynamic,
            batch=batch,
            device=device,
            simplify=True,
            verbose=False,
        )
    except Exception as exc:  # Ultralytics raises plain exceptions for bad weights or toolchains
        raise ModelError(
            f"export of {weights} to {fmt} failed: {exc}",
            hint="check the weights, the free disk space and (for engine) the TensorRT install",
        ) from exc
    path = Path(str(out))
    if not path.exists():
        raise ModelError(f"the exporter reported {path} but wrote nothing", hint="see the log above")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / path.name
        if dest.resolve() != path.resolve():
            shutil.move(str(path), dest)
        path = dest
    return path


def _require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("no CUDA device is available", hint="run on a GPU machine or use --device cpu")


def _check_export(weights: str, fmt: str, *, half: bool, batch: int, device: str) -> str:
    """Every reason an export would fail, as a clear error before Ultralytics starts; the device to use."""
    if fmt not in ("onnx", "engine"):
        raise ConfigError(f"unknown export format {fmt!r}", hint="use --format onnx or --format engine")
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}", hint="pass --batch 1 or more")
    src = Path(weights)
    if src.suffix.lower() in (".onnx", ".engine"):
        raise ConfigError(
            f"{weights} is already an exported model",
            hint="export from PyTorch weights (.pt) or an architecture (.yaml)",
        )
    if src.suffix.lower() in (".pt", ".pth") and os.sep in weights and not src.is_file():
        raise ConfigError(f"weights not found: {weights}", hint="check the path or use a model name")
    if device == "auto":  # MUGPOS_DEVICE's default: the GPU when there is one
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    cuda = device.startswith("cuda") or device.isdigit()
    if fmt == "engine":
        if not cuda:
            raise ConfigError(
                "TensorRT engines are built on an NVIDIA GPU",
                hint="pass --device cuda on a machine with CUDA, or use --format onnx for CPU",
            )
        _require_cuda()
        if importlib.util.find_spec("tensorrt") is None:
            raise ConfigError(
                "TensorRT is not installed",
                hint="pip install tensorrt (matching your CUDA), then export again",
            )
    else:
        missing = [m for m in ("onnx", "onnxslim") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"ONNX export needs {', '.join(missing)}",
                hint=f"pip install {' '.join(missing)}",
            )
    if half and not cuda:
        raise ConfigError("fp16 export needs a CUDA device", hint="drop --half or pass --device cuda")
    if cuda:
        _require_cuda()
    return device
