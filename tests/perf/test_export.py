"""export_detector: a real ONNX export that loads back, and clear errors for what cannot work here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mugpos.engine.export import export_detector
from mugpos.errors import ConfigError


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_onnx_export_of_random_yolov8n_loads_and_detects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    out = export_detector("yolov8n.yaml", "onnx", imgsz=320, dynamic=True, out_dir=tmp_path / "out")
    assert out == tmp_path / "out" / "yolov8n.onnx" and out.stat().st_size > 1_000_000
    import onnx

    model = onnx.load(str(out))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param  # dynamic batch axis, not a fixed 1
    from mugpos.engine.detector import Detector
    from mugpos.settings import Settings

    det = Detector(Settings(detector_weights=str(out), device="cpu", detector_imgsz=320, embedder="none"))
    det.load()
    results = det.detect([np.zeros((240, 320, 3), np.uint8), np.full((200, 300, 3), 90, np.uint8)])
    assert len(results) == 2


def test_engine_needs_cuda() -> None:
    if _cuda():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="NVIDIA GPU") as ei:
        export_detector("yolov8n.yaml", "engine", device="cpu")
    assert ei.value.hint


def test_half_needs_cuda() -> None:
    if _cuda():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="fp16"):
        export_detector("yolov8n.yaml", "onnx", half=True, device="cpu")


@pytest.mark.parametrize(
    ("weights", "fmt", "match"),
    [
        ("yolov8n.yaml", "tflite", "unknown export format"),
        ("model.onnx", "onnx", "already an exported model"),
        (os.path.join("no", "such", "weights.pt"), "onnx", "weights not found"),
    ],
)
def test_bad_requests_are_config_errors(weights: str, fmt: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        export_detector(weights, fmt, device="cpu")  # type: ignore[arg-type]


def test_bad_batch() -> None:
    with pytest.raises(ConfigError, match="batch"):
        export_detector("yolov8n.yaml", "onnx", batch=0)


def test_auto_device_resolves_before_checks() -> None:
    if _cuda():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="NVIDIA GPU"):  # auto -> cpu here, so no engine build
        export_detector("yolov8n.yaml", "engine", device="auto")
