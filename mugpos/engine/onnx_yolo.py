"""An Ultralytics YOLO `.onnx` export run on ONNX Runtime directly: no torch, no Ultralytics import.

Importing torch and building an Ultralytics predictor cost about 4 s before a worker's first answer;
ONNX Runtime opens the same file in ~40 ms. This module reproduces what Ultralytics 8.4 does around
the session for a detection export, step for step, so the detections are the same:

- letterbox (`LetterBox`): scale to fit, round each side, pad centred with grey 114 (to the export's
  fixed size, or for a dynamic export to the next stride multiple when the batch shares one shape);
- BGR->RGB, HWC->CHW, `/ 255` in float32 (float16 for a half export);
- a static-batch export runs its own batch size at a time, padding a short tail;
- NMS (`non_max_suppression`): best class per anchor above `conf`, boxes offset by class * 7680 so
  classes never suppress each other, greedy IoU suppression in descending score order (what
  `torchvision.ops.nms` does), at most `max_det`; end-to-end exports are only filtered;
- boxes mapped back through the padding and gain (`scale_boxes`) and clipped to the picture.

`tests/engine/test_onnx_yolo.py` checks that both paths give the same detections on real photos.
"""

from __future__ import annotations

import ast
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PAD_VALUE = 114
MAX_WH = 7680  # Ultralytics' per-class coordinate offset for class-aware NMS
MAX_NMS = 30000
BURST_QUIET_S = 1.0  # how long after two pictures overlapped one alone still takes a one-thread lane


@dataclass(frozen=True)
class RawDetections:
    """One picture's detections: `xyxy` (n, 4) in picture pixels, `conf` (n,), `cls` (n,) ints."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    shape: tuple[int, int]  # the picture's (height, width)
    # A segmenting model's outline per detection ((m, 2) pixel polygons), else None.
    outlines: tuple[np.ndarray, ...] | None = None


def _meta_dict(text: str | None) -> dict[int, str]:
    if not text:
        return {}
    try:
        value = ast.literal_eval(text)  # Ultralytics writes the names as a Python dict literal
    except (ValueError, SyntaxError):
        return {}
    return {int(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


class OnnxYolo:
    """An ONNX Runtime session over a YOLO detection export, with Ultralytics' pre/post-processing."""

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int | None = None) -> None:
        import onnxruntime as ort

        self._bytes = Path(path).read_bytes()  # read once; the lanes open from memory
        self.threads = threads or os.cpu_count() or 1
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        self._providers = providers
        self.session = self._session(self.threads)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self._lanes: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lanes_made = False
        self._lanes_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._running = 0  # predict() calls in flight (callers on several threads)
        self._overlap_at = -1e9  # when a call last came while another ran
        self._running_lock = threading.Lock()
        meta = self.session.get_modelmeta().custom_metadata_map
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.task = meta.get("task", "detect")
        self.stride = int(meta.get("stride", 32) or 32)
        self.end2end = meta.get("end2end", "False") == "True"
        self.fp16 = "float16" in inp.type
        batch, _, h, w = inp.shape
        self.batch = batch if isinstance(batch, int) else None  # None: any batch size
        self.fixed_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.dynamic = self.fixed_hw is None
        names = _meta_dict(meta.get("names"))
        if not names:
            channels = self.session.get_outputs()[0].shape[1]
            names = {i: f"class{i}" for i in range(int(channels) - 4)} if isinstance(channels, int) else {}
        self.names = names

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle ORT threads spin by default: on a shared CPU that starves decoding, drawing and the
        # event loop (and other processes) while it waits; measured slower, not faster, at 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(self._bytes, options, providers=self._providers)

    @property
    def lanes(self) -> int:
        """Pictures this model runs side by side: one per core for a batch-1 export on the CPU
        (one single-threaded session each), else 1 (it batches, or the GPU is one device)."""
        return self.threads if self.batch == 1 and self.threads > 1 and self.device == "cpu" else 1

    def make_lanes(self) -> None:
        """Open the one-thread lane sessions now (idempotent; ~0.2-0.4 s of CPU each), so a first
        burst of concurrent pictures does not wait for them."""
        if self.lanes > 1:
            self._make_lanes()

    def _make_lanes(self) -> None:
        with self._lanes_lock:
            if not self._lanes_made:
                for _ in range(self.threads):
                    self._lanes.put(self._session(1))
                self._lanes_made = True

    def _lane_pool(self) -> ThreadPoolExecutor:
        """One single-threaded session per core: a batch of a batch-1 export runs its pictures side
        by side instead of one after another (each picture still runs alone: same detections)."""
        if self._pool is None:
            self._make_lanes()
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mugpos-onnx-lane")
        return self._pool

    def _on_lane(self, image: np.ndarray, *args: Any) -> RawDetections:
        session = self._lanes.get()  # each lane runs one picture at a time
        try:
            return self._predict_on(session, [image], *args)[0]
        finally:
            self._lanes.put(session)

    # --- pre-processing -----------------------------------------------------------------------
    def _letterbox(self, image: np.ndarray, new_shape: tuple[int, int], auto: bool) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        r = min(new_shape[0] / h, new_shape[1] / w)
        new_unpad = max(round(w * r), 1), max(round(h * r), 1)
        dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
        if auto:
            dw, dh = dw % self.stride, dh % self.stride
        dw, dh = dw / 2, dh / 2
        top, bottom = round(dh - 0.1), round(dh + 0.1)
        left, right = round(dw - 0.1), round(dw + 0.1)
        if (w, h) != new_unpad:
            image = cv2.resize(image, new_unpad, interpolation=cv2.INTER_LINEAR)
        return cv2.copyMakeBorder(
            image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        )

    def _tensor(self, boxed: list[np.ndarray]) -> np.ndarray:
        """RGB HWC uint8 pictures -> NCHW floats in 0..1 (the model was exported for RGB)."""
        stacked = np.stack(boxed).transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(stacked).astype(np.float16 if self.fp16 else np.float32)
        x /= 255
        return x

    # --- inference ------------------------------------------------------------------------------
    def predict(
        self, images: list[np.ndarray], *, conf: float, iou: float, imgsz: int, max_det: int = 300
    ) -> list[RawDetections]:
        """RGB HxWx3 uint8 pictures -> detections per picture, as Ultralytics' `predict` finds them."""
        if not images:
            return []
        if self.lanes > 1 and len(images) > 1:
            pool = self._lane_pool()
            jobs = [pool.submit(self._on_lane, im, conf, iou, imgsz, max_det) for im in images]
            return [job.result() for job in jobs]
        if self.lanes > 1:
            # Callers on several threads (`LaneDispatcher`): a picture alone in the model gets every
            # core (the session's threads); one that comes while another runs takes a one-thread
            # lane, so two pictures share the cores instead of fighting over both.
            with self._running_lock:
                now = time.monotonic()
                if self._running:
                    self._overlap_at = now
                # Alone, and no overlap for a moment: a burst leaves gaps between its calls, and a
                # two-thread run in one of them would share the cores with the lanes and the CPU stages.
                alone = self._running == 0 and now - self._overlap_at > BURST_QUIET_S
                self._running += 1
            try:
                if alone:
                    return self._predict_on(self.session, images, conf, iou, imgsz, max_det)
                self._make_lanes()
                return [self._on_lane(images[0], conf, iou, imgsz, max_det)]
            finally:
                with self._running_lock:
                    self._running -= 1
        return self._predict_on(self.session, images, conf, iou, imgsz, max_det)

    def _predict_on(
        self, session: Any, images: list[np.ndarray], conf: float, iou: float, imgsz: int, max_det: int
    ) -> list[RawDetections]:
        new_shape = self.fixed_hw or (imgsz, imgsz)
        auto = self.dynamic and len({im.shape for im in images}) == 1
        boxed = [self._letterbox(im, new_shape, auto) for im in images]
        x = self._tensor(boxed)
        preds = self._run(session, x)
        in_hw = x.shape[2:]
        out = []
        for pred, im in zip(preds, images, strict=True):
            rows = self._select(pred, conf, iou, max_det)
            xyxy = _scale_boxes(in_hw, rows[:, :4], im.shape[:2])
            out.append(RawDetections(xyxy, rows[:, 4], rows[:, 5].astype(int), im.shape[:2]))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _run(self, session: Any, x: np.ndarray) -> np.ndarray:
        if self.batch is None or x.shape[0] == self.batch:
            return np.asarray(session.run(self.output_names[:1], {self.input_name: x})[0], np.float32)
        parts = []
        for start in range(0, x.shape[0], self.batch):
            chunk = x[start : start + self.batch]
            pad = self.batch - chunk.shape[0]
            if pad:  # a static-batch export rejects a short batch: pad, then drop the padding's rows
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            y = session.run(self.output_names[:1], {self.input_name: chunk})[0]
            parts.append(np.asarray(y[: self.batch - pad], np.float32))
        return np.concatenate(parts)

    def _select(self, pred: np.ndarray, conf: float, iou: float, max_det: int) -> np.ndarray:
        """One picture's raw output -> rows (x1, y1, x2, y2, conf, cls) on the model's input."""
        if self.end2end or pred.shape[-1] == 6:  # (n, 6) rows, NMS already inside the graph
            return pred[pred[:, 4] > conf][:max_det]
        pred = pred.T  # (4 + nc, anchors) -> (anchors, 4 + nc)
        scores = pred[:, 4:]
        best = scores.max(1)
        x = pred[best > conf]
        if not len(x):
            return np.zeros((0, 6), np.float32)
        boxes = _xywh2xyxy(x[:, :4])
        cls = x[:, 4:].argmax(1)
        confs = x[:, 4:][np.arange(len(x)), cls]
        keep = confs > conf
        rows = np.concatenate([boxes, confs[:, None], cls[:, None].astype(np.float32)], 1)[keep]
        if len(rows) > MAX_NMS:
            rows = rows[np.argsort(-rows[:, 4], kind="stable")[:MAX_NMS]]
        kept = nms(rows[:, :4] + rows[:, 5:6] * MAX_WH, rows[:, 4], iou)[:max_det]
        return rows[kept]


def _xywh2xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b)
    xy, half = b[:, :2], b[:, 2:] / 2
    out[:, :2] = xy - half
    out[:, 2:] = xy + half
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS as `torchvision.ops.nms`: highest score first, drop boxes with IoU > `iou`."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(overlap > iou)]
    return np.asarray(keep, dtype=np.int64)


def _scale_boxes(in_hw: tuple[int, ...], boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boxes on the letterboxed input -> boxes on the picture, clipped (Ultralytics' `scale_boxes`)."""
    h0, w0 = shape[:2]
    gain = min(in_hw[0] / h0, in_hw[1] / w0)
    new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
    gain_y, gain_x = new_h / h0, new_w / w0
    pad_x, pad_y = round((in_hw[1] - new_w) / 2 - 0.1), round((in_hw[0] - new_h) / 2 - 0.1)
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - pad_x) / np.float32(gain_x)
    out[:, [1, 3]] = (out[:, [1, 3]] - pad_y) / np.float32(gain_y)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w0)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h0)
    return out
