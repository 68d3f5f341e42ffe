"""ONNX Runtime straight on the export gives Ultralytics' detections, without importing torch.

The direct path (`MUGPOS_DETECTOR_BACKEND=auto` for `.onnx`) exists for cold start; it must not
change a single detection. Both backends run the real int8 COCO export on real photos here, through
the same letterbox canvases the pipeline makes, alone and in batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mugpos.engine.detector import Detector
from mugpos.engine.letterbox import fit
from mugpos.engine.onnx_yolo import nms
from mugpos.errors import ConfigError
from mugpos.settings import Settings


def _detector(weights: Path, backend: str) -> Detector:
    d = Detector(
        Settings(_env_file=None, detector_weights=str(weights), device="cpu", detector_backend=backend)  # type: ignore[arg-type]
    )
    d.load()
    return d


@pytest.fixture(scope="module")
def both(data_dir: Path) -> tuple[Detector, Detector]:
    weights = data_dir / "models" / "yolov8n_int8.onnx"
    return _detector(weights, "onnxruntime"), _detector(weights, "ultralytics")


def _photos(data_dir: Path) -> list[np.ndarray]:
    paths = [data_dir / "photos" / "coffee.png", *sorted((data_dir / "coco-cups" / "images").glob("*.jpg"))]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _same(a: list, b: list) -> None:
    """Identical: labels, boxes (0.1 px) and confidences (4 places), in the same order."""
    assert [(d.label, d.box, d.confidence) for d in a] == [(d.label, d.box, d.confidence) for d in b]


def test_direct_onnxruntime_gives_ultralytics_detections(
    both: tuple[Detector, Detector], data_dir: Path
) -> None:
    direct, ultra = both
    assert direct.backend == "onnxruntime" and ultra.backend == "ultralytics"
    assert direct.identity == ultra.identity  # same weights, same settings: one cache key
    assert direct.names == ultra.names
    photos = _photos(data_dir)
    canvases = [fit(Image.fromarray(p), 640).array for p in photos]  # what the pipeline sends
    total = 0
    for frames in (photos, canvases):
        got, want = direct.detect(frames), ultra.detect(frames)  # batches: Ultralytics loops a static export
        for a, b in zip(got, want, strict=True):
            _same(a, b)
            total += len(a)
        for frame, batched in zip(frames[:3], got[:3], strict=True):
            _same(direct.detect([frame])[0], batched)
    assert total >= 40  # busy COCO tables: plenty of boxes compared


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 3, 2, 0]
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_onnxruntime_backend_refuses_other_weights(tmp_path: Path) -> None:
    d = Detector(Settings(_env_file=None, detector_weights="yolov8n.yaml", detector_backend="onnxruntime"))
    with pytest.raises(ConfigError, match=r"\.onnx"):
        d.load()


def test_first_analysis_never_imports_torch(app_env: dict[str, str], coffee_png: Path) -> None:
    """The cold-start path: a CLI analysis with .onnx weights and no embedder leaves torch unloaded."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['mugpos', 'analyze', sys.argv[1], '--json', '--no-store']\n"
        "try:\n    runpy.run_module('mugpos', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = sorted(m for m in ('torch', 'ultralytics', 'torchvision') if m in sys.modules)\n"
        "print('IMPORTED', bad, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(coffee_png)],
        capture_output=True,
        text=True,
        env={**os.environ, **app_env},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"cup"' in proc.stdout
    assert "IMPORTED []" in proc.stderr


def test_pictures_on_concurrent_lanes_are_the_pictures_alone(data_dir: Path) -> None:
    """A batch-1 export called from several threads at once (the engine's LaneDispatcher) runs each
    picture on its own one-thread session or the main one: every detection as when run alone."""
    from concurrent.futures import ThreadPoolExecutor

    detector = _detector(data_dir / "models" / "yolov8n_int8.onnx", "onnxruntime")
    if detector.lanes < 2:
        pytest.skip("one core or a batching export: no lanes")
    photos = [fit(Image.fromarray(im), 640).array for im in _photos(data_dir)]
    alone = [detector.detect([im])[0] for im in photos]
    with ThreadPoolExecutor(detector.lanes) as pool:
        for _ in range(2):
            side_by_side = list(pool.map(lambda im: detector.detect([im])[0], photos))
            for a, b in zip(side_by_side, alone, strict=True):
                _same(a, b)
    assert detector._model._lanes_made  # some pictures did take a lane
