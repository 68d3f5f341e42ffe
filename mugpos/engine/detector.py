"""The object detector: Ultralytics YOLO (.pt, .onnx, TensorRT .engine, or a .yaml for random weights).

`.onnx` exports run on ONNX Runtime directly (`mugpos.engine.onnx_yolo`, same detections, no torch:
the first answer comes seconds sooner); everything else, or `MUGPOS_DETECTOR_BACKEND=ultralytics`,
goes through Ultralytics. Either is imported in `load()` only, so the CLI and the MCP handshake stay
fast. Offline, a weight file that is not on disk fails at once with a `ConfigError` rather than a
download attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mugpos.engine.onnx_yolo import RawDetections
from mugpos.errors import ConfigError, ModelError
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import MAX_OUTLINE_POINTS, Detection

if TYPE_CHECKING:
    import numpy as np

    from mugpos.settings import Settings

_WEIGHTS_HINT = (
    "Set MUGPOS_DETECTOR_WEIGHTS to a local .pt, .onnx or .engine file "
    "(or connect to the internet once so Ultralytics can download yolov8n.pt)."
)
log = logging.getLogger(__name__)


def offline() -> bool:
    """The user said so (MUGPOS_OFFLINE / HF_HUB_OFFLINE / YOLO_OFFLINE), or GitHub (where Ultralytics
    downloads from) is unreachable; asked once per process (`mugpos.engine.fetch`)."""
    from mugpos.engine.fetch import why_offline

    return why_offline("github.com") is not None


def _onnx_has_gpu() -> bool:
    try:
        import onnxruntime

        return bool(
            {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
            & set(onnxruntime.get_available_providers())
        )
    except Exception:
        return False


def _precision_kwargs(half: bool) -> dict[str, Any]:
    """Ultralytics >= 8.4 spells fp16 `quantize=16` and warns on every call given `half`."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 16 if half else None}
    return {"half": half}


def file_digest(path: Path, n: int = 12) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:n]


class Detector:
    """One Ultralytics model; `detect` runs a whole list of images in one predict call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model: Any = None
        self._device: str | None = None
        self._identity: str | None = None
        self._threads_set = False
        self.backend = "ultralytics"  # or "onnxruntime" once an .onnx export is loaded directly

    # --- state ---------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = self.settings.resolved_device()
        return self._device

    @property
    def half(self) -> bool:
        h = self.settings.half
        return h == "on" or (h == "auto" and self.device.startswith("cuda"))

    @property
    def identity(self) -> str:
        """Weights name + content hash + the settings that change the output: a cache key part."""
        if self._identity is None:
            raise ModelError("The detector is not loaded yet.", hint="Call load() first.")
        return self._identity

    @property
    def lanes(self) -> int:
        """Pictures `detect` can run side by side when called from several threads at once: more
        than 1 only for a batch-1 ONNX export on a multi-core CPU (`OnnxYolo.lanes`)."""
        model = self._require()
        return int(getattr(model, "lanes", 1)) if self.backend == "onnxruntime" else 1

    def make_lanes(self) -> None:
        """Open the side-by-side lanes now rather than on the first overlap (`OnnxYolo.make_lanes`);
        nothing to do for a model without lanes."""
        if self.lanes > 1:
            self._require().make_lanes()

    @property
    def names(self) -> dict[int, str]:
        return dict(self._require().names)

    # --- loading -------------------------------------------------------------------------------

    def resolve_weights(self) -> tuple[str, Path | None]:
        """(what to give YOLO, the local file if any); a ConfigError when it cannot exist here."""
        spec = self.settings.detector_weights.strip()
        if not spec:
            raise ConfigError("MUGPOS_DETECTOR_WEIGHTS is empty.", hint=_WEIGHTS_HINT)
        path = Path(spec).expanduser()
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return spec, path if path.is_file() else None  # Ultralytics also knows its own yamls
        if path.exists():
            return str(path), path
        bare = path.parent == Path(".") and not spec.startswith(".")
        if not bare:
            raise ConfigError(
                f"The detector weights file {spec!r} does not exist (MUGPOS_DETECTOR_WEIGHTS).",
                hint=_WEIGHTS_HINT,
            )
        # A bare model name: Ultralytics looks in its weights folder, then downloads.
        try:
            from ultralytics.utils import SETTINGS

            cached = Path(SETTINGS["weights_dir"]) / path.name
        except Exception:
            cached = None
        if cached is not None and cached.is_file():
            return str(cached), cached
        if suffix not in (".pt",):
            raise ConfigError(
                f"Only .pt model names can be downloaded; {spec!r} must be a local file "
                "(MUGPOS_DETECTOR_WEIGHTS).",
                hint=_WEIGHTS_HINT,
            )
        from mugpos.engine.fetch import why_offline

        if (why := why_offline("github.com")) is not None:
            raise ConfigError(
                f"The detector weights {spec!r} (MUGPOS_DETECTOR_WEIGHTS) are not on this machine and "
                f"cannot be downloaded: {why}.",
                hint=_WEIGHTS_HINT,
            )
        log.warning("downloading the detector weights %s (first run only)", spec)
        return spec, None

    def load(self) -> None:
        """Blocking: build the model and run one tiny predict so a broken backend fails here."""
        if self._model is not None:
            return
        import numpy as np

        weights, local = self.resolve_weights()
        suffix = Path(weights).suffix.lower()
        if suffix == ".onnx" and self.settings.detector_backend in ("auto", "onnxruntime"):
            self._load_onnxruntime(weights)
            self._set_identity(weights, local)
            return
        if self.settings.detector_backend == "onnxruntime":
            raise ConfigError(
                f"MUGPOS_DETECTOR_BACKEND=onnxruntime runs .onnx weights only, not {Path(weights).name!r}.",
                hint="point MUGPOS_DETECTOR_WEIGHTS at a .onnx export, or set MUGPOS_DETECTOR_BACKEND=auto",
            )
        try:
            from ultralytics import YOLO
        except ImportError as e:  # pragma: no cover - a broken install
            raise ConfigError(f"Ultralytics is not installed: {e}", hint="pip install ultralytics") from None
        ultralytics_logs_to_stderr()
        if suffix == ".onnx" and self.device != "cpu" and not _onnx_has_gpu():
            # Ultralytics would try to pip-install onnxruntime-gpu, then fall back to CPU anyway.
            log.warning("onnxruntime has no GPU provider here; running %s on the CPU", Path(weights).name)
            self._device = "cpu"
        try:
            with _download_progress(local is None and suffix == ".pt"):
                model = YOLO(weights, task="detect") if suffix in (".onnx", ".engine") else YOLO(weights)
        except ConfigError:
            raise
        except FileNotFoundError as e:
            raise ConfigError(
                f"Cannot find the detector weights {weights!r}: {e} (MUGPOS_DETECTOR_WEIGHTS).",
                hint=_WEIGHTS_HINT,
            ) from None
        except Exception as e:
            raise self._load_error(weights, e) from None
        if getattr(model, "task", "detect") not in ("detect", "segment"):
            raise ConfigError(
                f"{weights!r} is a {model.task} model; mugpos needs a detection or segmentation "
                "model (MUGPOS_DETECTOR_WEIGHTS).",
                hint=_WEIGHTS_HINT,
            )
        self._model = model
        try:
            # .onnx/.engine build their runtime session on the first predict: surface errors now.
            self._predict([np.zeros((32, 32, 3), dtype=np.uint8)])
        except Exception as e:
            self._model = None
            raise self._load_error(weights, e) from None
        if local is None and suffix not in (".yaml", ".yml"):  # downloaded by Ultralytics just now
            ckpt = getattr(model, "ckpt_path", None)
            local = Path(ckpt) if ckpt else None
        self._set_identity(weights, local)

    def _load_onnxruntime(self, weights: str) -> None:
        """ONNX Runtime straight on the export: no torch, no Ultralytics (see `onnx_yolo`)."""
        import numpy as np

        from mugpos.engine.onnx_yolo import OnnxYolo

        if self.settings.device == "auto" and self._device is None:
            # Asking torch which device is there would import it; ONNX Runtime knows its own.
            self._device = "cuda:0" if _onnx_has_gpu() else "cpu"
        try:
            model = OnnxYolo(weights, device=self.device, threads=self.settings.threads)
        except Exception as e:
            raise self._load_error(weights, e) from None
        if model.task != "detect":
            raise ConfigError(
                f"{weights!r} is a {model.task} model; mugpos runs detection exports on ONNX Runtime "
                "(MUGPOS_DETECTOR_WEIGHTS).",
                hint="a segmentation model runs from its .pt (e.g. yolov8n-seg.pt), which outlines tables"
                if model.task == "segment"
                else _WEIGHTS_HINT,
            )
        if model.device != self.device.split(":")[0]:
            log.warning("onnxruntime has no GPU provider here; running %s on the CPU", Path(weights).name)
            self._device = "cpu"
        self._model = model
        self.backend = "onnxruntime"
        try:
            self._predict([np.zeros((32, 32, 3), dtype=np.uint8)])
        except Exception as e:
            self._model = None
            raise self._load_error(weights, e) from None

    def _set_identity(self, weights: str, local: Path | None) -> None:
        suffix = Path(weights).suffix.lower()
        content = file_digest(local) if local is not None and local.is_file() else "random-init"
        if suffix in (".yaml", ".yml"):
            content = "random-init"
        s = self.settings
        self._identity = (
            f"{Path(weights).name}@{content}/imgsz{s.detector_imgsz}/conf{s.confidence:g}/iou{s.iou:g}"
        )

    def warmup(self) -> None:
        """One full-size dummy predict so the first real request does not pay for lazy setup."""
        import numpy as np

        model = self._require()
        if self.backend == "onnxruntime" and model.fixed_hw is not None:
            return  # load() already ran the export's one full input size
        size = self.settings.detector_imgsz
        self._predict([np.full((size, size, 3), 114, dtype=np.uint8)])

    @staticmethod
    def _load_error(weights: str, e: BaseException) -> ModelError:
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        return ModelError(
            f"Could not load the detector weights {Path(weights).name!r}: {type(e).__name__}: {reason}",
            hint="The file may be corrupt, truncated or from an incompatible export; "
            "replace it or point MUGPOS_DETECTOR_WEIGHTS at another file.",
        )

    def _require(self) -> Any:
        if self._model is None:
            raise ModelError("The detector is not loaded yet.", hint="Call load() first.")
        return self._model

    # --- inference -----------------------------------------------------------------------------

    def _predict(self, images: list[np.ndarray]) -> list[RawDetections]:
        s = self.settings
        model = self._require()
        if self.backend == "onnxruntime":
            return model.predict(images, conf=s.confidence, iou=s.iou, imgsz=s.detector_imgsz)
        # RGB -> BGR as a view (negative stride); Ultralytics' letterbox copies anyway.
        results = model.predict(
            [im[..., ::-1] for im in images],
            conf=s.confidence,
            iou=s.iou,
            imgsz=s.detector_imgsz,
            **_precision_kwargs(self.half),
            device=self.device,
            verbose=False,
        )
        if not self._threads_set and self.device == "cpu":
            # Ultralytics pins torch to one thread on import and on the first predict.
            import torch

            torch.set_num_threads(s.threads or os.cpu_count() or 1)
            self._threads_set = True
        return [_raw(r) for r in results]

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """RGB HxWx3 uint8 arrays -> detections per image (ids unset), in one predict call."""
        import numpy as np

        if not images:
            return []
        for i, im in enumerate(images):
            if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                shape = getattr(im, "shape", None)
                raise ModelError(
                    f"Image {i} is not an RGB HxWx3 uint8 array (shape {shape}).",
                    hint="Decode images with mugpos.engine.images first.",
                )
        try:
            results = self._predict(images)
        except MemoryError:
            raise
        except Exception as e:
            raise ModelError(
                f"The detector failed: {type(e).__name__}: {e}", hint="See the server log."
            ) from e
        names = self.names
        return [detections_of(r, names) for r in results]


def detections_of(r: RawDetections, names: dict[int, str]) -> list[Detection]:
    """One picture's raw arrays -> its detections (ids unset): boxes clamped to the picture, a
    table's outline kept where the model segments (the scene reads its sides from it)."""
    h, w = r.shape
    dets: list[Detection] = []
    outlines = r.outlines or (None,) * len(r.conf)
    for (x1, y1, x2, y2), c, k, ring in zip(r.xyxy, r.conf, r.cls, outlines, strict=True):
        box = (
            round(float(min(max(x1, 0.0), w)), 1),
            round(float(min(max(y1, 0.0), h)), 1),
            round(float(min(max(x2, 0.0), w)), 1),
            round(float(min(max(y2, 0.0), h)), 1),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            continue  # degenerate after rounding
        label = str(names[int(k)])
        dets.append(
            Detection(
                label=label,
                box=box,
                confidence=round(float(min(max(c, 0.0), 1.0)), 4),
                outline=outline_of(ring, w, h) if label in SURFACE_LABELS else None,
            )
        )
    return dets


def _raw(r: Any) -> RawDetections:
    """An Ultralytics `Results` -> the arrays both backends hand back."""
    import numpy as np

    boxes = r.boxes
    if not len(boxes):
        return RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int), tuple(r.orig_shape))
    masks = getattr(r, "masks", None)
    return RawDetections(
        boxes.xyxy.cpu().numpy(),
        boxes.conf.cpu().numpy(),
        boxes.cls.cpu().numpy().astype(int),
        tuple(r.orig_shape),
        None if masks is None else tuple(np.asarray(p, float) for p in masks.xy),
    )


OUTLINE_TOLERANCE = 0.004  # of the outline's perimeter: how far the kept polygon may stray from the mask


def outline_of(ring: np.ndarray | None, width: float, height: float) -> list[tuple[float, float]] | None:
    """A mask's contour (m, 2 pixels) -> the polygon a scene carries: simplified (a mask's contour
    has a point per pixel step; its straight sides need two), clipped to the picture, at most
    `MAX_OUTLINE_POINTS` points. None when there is no usable contour."""
    import cv2
    import numpy as np

    if ring is None or len(ring) < 3:
        return None
    pts = np.asarray(ring, np.float32).reshape(-1, 1, 2)
    eps = OUTLINE_TOLERANCE * cv2.arcLength(pts, True)
    while True:
        poly = cv2.approxPolyDP(pts, eps, True).reshape(-1, 2)
        if len(poly) <= MAX_OUTLINE_POINTS:
            break
        eps *= 2
    if len(poly) < 3:
        return None
    return [
        (round(float(min(max(x, 0.0), width)), 1), round(float(min(max(y, 0.0), height)), 1)) for x, y in poly
    ]


def ultralytics_logs_to_stderr() -> None:
    """Ultralytics logs (and warns on every predict) to stdout, which belongs to the MCP stdio
    stream and to `--json` output: move its handlers to stderr."""
    import logging
    import sys

    from ultralytics.utils import LOGGER

    for h in LOGGER.handlers:
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stdout:
            h.setStream(sys.stderr)


@contextlib.contextmanager
def _download_progress(downloading: bool) -> Iterator[None]:
    """Show Ultralytics' download progress bar (on stderr) for a first-run download, even when
    YOLO_VERBOSE=False quiets everything else: a 6 MB wait should not look like a hang."""
    if not downloading:
        yield
        return
    import ultralytics.utils as uu

    verbose, level = uu.VERBOSE, uu.LOGGER.level
    uu.VERBOSE = True
    uu.LOGGER.setLevel(logging.INFO)
    try:
        yield
    finally:
        uu.VERBOSE = verbose
        uu.LOGGER.setLevel(level)
