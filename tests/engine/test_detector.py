"""The detector on real weights and real photos, a random-init YOLOv8n, and every loading failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mugpos.engine.detector import Detector
from mugpos.errors import ConfigError, ModelError
from mugpos.scene.geometry import iou
from mugpos.scene.model import Scene
from mugpos.settings import Settings

COFFEE_CUP = (170.0, 17.0, 424.0, 325.0)


@pytest.fixture(scope="module")
def onnx_detector(data_dir: Path) -> Detector:
    s = Settings(
        _env_file=None, detector_weights=str(data_dir / "models" / "yolov8n_int8.onnx"), device="cpu"
    )
    d = Detector(s)
    d.load()
    return d


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_onnx_finds_the_coffee_cup_and_table(onnx_detector: Detector, data_dir: Path) -> None:
    [dets] = onnx_detector.detect([_rgb(data_dir / "photos" / "coffee.png")])
    cups = [d for d in dets if d.label == "cup"]
    assert len(cups) == 1 and iou(cups[0].box, COFFEE_CUP) >= 0.7 and cups[0].confidence > 0.5
    assert any(d.label == "dining table" for d in dets)
    assert all(d.id is None for d in dets)
    assert all(round(c, 1) == c for d in dets for c in d.box)
    assert onnx_detector.loaded and onnx_detector.device == "cpu"
    ident = onnx_detector.identity
    assert ident.startswith("yolov8n_int8.onnx@") and "imgsz640" in ident and "conf0.25" in ident


def test_batch_equals_single(onnx_detector: Detector, data_dir: Path) -> None:
    coffee = _rgb(data_dir / "photos" / "coffee.png")
    other = _rgb(sorted((data_dir / "coco-cups" / "images").glob("*.jpg"))[0])
    batch = onnx_detector.detect([coffee, other, coffee])
    assert len(batch) == 3
    single = onnx_detector.detect([other])[0]
    assert [d.label for d in batch[1]] == [d.label for d in single]
    assert [d.box for d in batch[0]] == [d.box for d in batch[2]]
    assert onnx_detector.detect([]) == []


def test_coco_cups_against_human_labels(onnx_detector: Detector, data_dir: Path) -> None:
    """A modest bar: the int8 model's cup recall at IoU 0.5 is about 0.4 (see the data README)."""
    root = data_dir / "coco-cups"
    paths = sorted((root / "images").glob("*.jpg"))
    assert paths
    results = onnx_detector.detect([_rgb(p) for p in paths])
    found = total = 0
    best_ious: list[float] = []
    for p, dets in zip(paths, results, strict=True):
        truth = Scene.model_validate(json.loads((root / "scenes" / f"{p.stem}.json").read_text()))
        assert all(d.box[2] <= truth.image.width and d.box[3] <= truth.image.height for d in dets)
        pred = [d.box for d in dets if d.label == "cup"]
        for cup in truth.mugs:
            total += 1
            best = max((iou(cup.box, b) for b in pred), default=0.0)
            best_ious.append(best)
            found += best >= 0.5
    recall = found / total
    assert total >= 10
    assert recall >= 0.25, f"cup recall {recall:.2f} over {total} labelled cups"
    matched = [v for v in best_ious if v >= 0.5]
    assert np.mean(matched) >= 0.65  # boxes that match, match well


def test_random_yaml_model_runs_the_batch_api() -> None:
    d = Detector(Settings(_env_file=None, detector_weights="yolov8n.yaml", device="cpu", detector_imgsz=160))
    d.load()
    rng = np.random.default_rng(1)
    imgs = [
        rng.integers(0, 255, (120, 200, 3), dtype=np.uint8),
        rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
    ]
    out = d.detect(imgs)
    assert len(out) == 2
    for dets, im in zip(out, imgs, strict=True):
        for det in dets:
            assert det.label in d.names.values()
            assert 0 <= det.box[0] < det.box[2] <= im.shape[1]
    assert "yolov8n.yaml@random-init" in d.identity
    import torch

    assert torch.get_num_threads() >= 1
    with pytest.raises(ModelError):
        d.detect([np.zeros((10, 10), dtype=np.uint8)])  # not HxWx3


def test_missing_weights_offline_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    for spec in (str(tmp_path / "nope.pt"), "./missing/best.onnx", "yolov8x-does-not-exist.pt"):
        with pytest.raises(ConfigError) as ei:
            Detector(Settings(_env_file=None, detector_weights=spec, device="cpu")).load()
        assert "MUGPOS_DETECTOR_WEIGHTS" in ei.value.message + ei.value.hint


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_corrupt_weights_are_a_model_error(tmp_path: Path, suffix: str) -> None:
    bad = tmp_path / f"broken{suffix}"
    bad.write_bytes(b"this is not a model" * 100)
    with pytest.raises(ModelError) as ei:
        Detector(Settings(_env_file=None, detector_weights=str(bad), device="cpu")).load()
    assert "broken" in ei.value.message


def test_not_loaded_is_clear() -> None:
    d = Detector(Settings(_env_file=None, device="cpu"))
    assert not d.loaded
    with pytest.raises(ModelError, match="not loaded"):
        d.detect([np.zeros((8, 8, 3), dtype=np.uint8)])


def test_a_segmenting_model_gives_a_table_its_outline() -> None:
    """Ultralytics' own Results, with a mask per detection, through the conversion every predict
    takes: the table keeps its outline (simplified to its corners), a mug does not carry one."""
    import cv2
    import torch
    from ultralytics.engine.results import Results

    from mugpos.engine.detector import _raw, detections_of

    h, w = 480, 640
    corners = np.array([[100, 200], [540, 200], [620, 479], [20, 479]], np.int32)  # cut by the bottom
    table = np.zeros((h, w), np.uint8)
    cv2.fillPoly(table, [corners], 1)
    cup = np.zeros((h, w), np.uint8)
    cv2.rectangle(cup, (300, 150), (340, 210), 1, -1)
    names = {41: "cup", 60: "dining table"}
    r = Results(
        np.zeros((h, w, 3), np.uint8),
        path="desk.jpg",
        names=names,
        boxes=torch.tensor([[20.0, 200.0, 620.0, 480.0, 0.9, 60.0], [300.0, 150.0, 340.0, 210.0, 0.8, 41.0]]),
        masks=torch.from_numpy(np.stack([table, cup])).float(),
    )
    dets = detections_of(_raw(r), names)
    assert [d.label for d in dets] == ["dining table", "cup"]
    assert dets[1].outline is None
    outline = np.array(dets[0].outline)
    assert 4 <= len(outline) <= 8, outline  # a mask's staircase reduced to the trapezoid's corners
    for c in corners:  # every corner is on the outline, to a pixel or two
        assert np.min(np.hypot(*(outline - c).T)) < 3.0, (c, outline)
    d = Detector(
        Settings(_env_file=None, detector_weights="yolov8n-seg.yaml", device="cpu", detector_imgsz=160)
    )
    d.load()  # a segmentation model is a detector too
    assert d.detect([np.zeros((64, 64, 3), np.uint8)]) == [[]]
