"""The analysis pipeline: a loaded image -> `Analysis`, through the batchers and the cache.

Models load in a background thread (`start()`), so the MCP server can answer `initialize` at once;
the first analysis waits for them (`wait_ready`). Detection and embedding each go through a
MicroBatcher, so concurrent requests share forward passes; decoding and geometry run in other
threads and overlap with inference. Whole analyses are cached by image hash + model identities.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from mugpos.engine.analysis import Analysis, ImageRef
from mugpos.engine.exif import read_focal_35mm
from mugpos.engine.letterbox import fit, unfit
from mugpos.engine.timings import Timings
from mugpos.errors import ConfigError, ModelError, MugposError
from mugpos.scene.geometry import MugPosition, Relation, Surface, surface_for
from mugpos.scene.model import Detection, ImageInfo, Scale, Scene
from mugpos.settings import Settings

if TYPE_CHECKING:
    from PIL import Image

    from mugpos.engine.batching import LaneDispatcher, MicroBatcher
    from mugpos.engine.detector import Detector
    from mugpos.engine.embedder import Embedder
    from mugpos.engine.images import LoadedImage
    from mugpos.scene.measure import Desk

log = logging.getLogger("mugpos.engine")

Progress = Callable[[float, str], Awaitable[None]]
STAGES_HOLD_MAX_S = 10.0  # `Engine.start(hold_stages=True)`: the longest the warm stages wait
LANES_IDLE_WAIT_S = 3.0  # how long the CPU workers and lanes wait for the first answer before starting
LANES_GRACE_S = 0.5  # and how long after it


class AnalysisCache(Protocol):
    """The cache the pipeline consults (the dual-layer cache of `mugpos.stores.cache` is one);
    a protocol here, so the engine never imports a store."""

    def key(self, kind: str, *parts: str) -> str: ...

    async def get(self, key: str) -> tuple[bytes | None, str | None]: ...

    async def set(self, key: str, value: bytes) -> None: ...


SceneAnalysis = Analysis  # the earlier name of the one analysis type


def measure_scene(
    scene: Scene, *, px_per_cm: float | None = None
) -> tuple[Scene, Scale, Surface, list[MugPosition], list[Relation]]:
    """The measure stage (pure): the ground plane, footprints, the table, mug positions, relations.

    The returned scene carries `plane`, `surface` and each object's `footprint_cm`; its
    `px_per_cm` stays what the caller gave (None when estimated), so measuring it again, as a
    re-check of a stored analysis does, reports the same provenance instead of "given".
    """
    scene, _desk, scale, surface, mugs, relations = measure_desk_scene(scene, px_per_cm=px_per_cm)
    return scene, scale, surface, mugs, relations


def measure_desk_scene(
    scene: Scene, *, px_per_cm: float | None = None
) -> tuple[Scene, Desk, Scale, Surface, list[MugPosition], list[Relation]]:
    """`measure_scene`, also returning the measured Desk for rules to reuse."""
    # Imported here: the plane fit brings scipy (~1 s), which `initialize` must not wait for; the
    # model loader imports it in the background (`Engine._load`).
    from mugpos.scene.measure import measure_desk
    from mugpos.scene.positions import mug_position, mug_relations, scale_of

    if px_per_cm is not None:
        scene = scene.model_copy(update={"px_per_cm": px_per_cm})
    bare = scene.model_copy(
        update={
            "plane": None,
            "surface": None,
            "objects": [o.model_copy(update={"footprint_cm": None}) for o in scene.objects],
        }
    )
    desk = measure_desk(bare)
    measured = desk.measured_scene()
    desk.scene = measured
    scale = scale_of(desk)
    surface = surface_for(measured)
    mugs = [mug_position(desk, m) for m in measured.mugs]
    relations = mug_relations(desk)
    return measured, desk, scale, surface, mugs, relations


def measure_packed(
    scene: Scene, *, px_per_cm: float | None = None
) -> tuple[Scene, bytes, Scale, Surface, list[MugPosition], list[Relation]]:
    """`measure_desk_scene` for a CPU-stage worker process: the Desk comes back pickled, so the
    server unpickles only pydantic models and never imports the plane fit (`Analysis.keep_desk`)."""
    import pickle

    measured, desk, scale, surface, mugs, relations = measure_desk_scene(scene, px_per_cm=px_per_cm)
    return measured, pickle.dumps(desk, protocol=pickle.HIGHEST_PROTOCOL), scale, surface, mugs, relations


def scale_warnings(scale: Scale, scene: Scene | None = None) -> list[str]:
    out = []
    if scale.source == "assumed":
        out.append(f"scale assumed ({scale.note}); pass px_per_cm or camera for real centimetres")
    surf = scene.surface if scene is not None else None
    if surf is not None:
        hidden = [n for n, e in surf.edges.items() if not e.seen]
        if surf.kind == "inferred":
            out.append(
                "no table detected: edge rules cannot be judged (the photo's border is not a table edge)"
            )
        elif hidden:
            out.append(
                f"the photo does not show the table's {', '.join(hidden)} edge: distances to it are lower bounds"
            )
    return out


class Engine:
    def __init__(self, settings: Settings, cache: AnalysisCache | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.detector: Detector | None = None
        self.embedder: Embedder | None = None
        self.embedder_note: str = "not loaded"
        self._det_batcher: (
            MicroBatcher[Any, list[Detection]] | LaneDispatcher[Any, list[Detection]] | None
        ) = None
        self._emb_batcher: MicroBatcher[Any, Any] | None = None
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._loader: threading.Thread | None = None
        self._want_embedder = False
        self._emb_tried = False
        self._emb_lock = threading.Lock()
        self._stage = "idle"
        # Set when the warm stages may run (`start(hold_stages=True)` holds them; any later start(),
        # and so any analysis that waits, lets them go). `_waiting`: analyses waiting for the load.
        self._stages_go = threading.Event()
        self._stages_go.set()
        self._waiting = 0
        self._load_started: float | None = None
        self.load_seconds: dict[str, float] = {}
        self.analyses = 0
        self._closing = False
        from mugpos.engine.cpu import CpuStages

        # The plane fit, rules and moves: in worker processes, off this interpreter's lock.
        self.cpu = CpuStages(settings.cpu_processes, warmers=(warm_measure,))

    # --- model lifecycle ----------------------------------------------------------------
    def start(self, *, embedder: bool = True, hold_stages: bool = False) -> None:
        """Begin loading the models in a background thread (idempotent). `embedder=False` loads
        the detector alone: checking rules never needs CLIP, so it never waits for it.

        `hold_stages=True` (a first start only) loads the detector, then waits for the next start()
        before warming the other stages: their imports (scipy, ~0.6 s) hold the interpreter lock, so
        a server that starts loading before its handshake lets the handshake go first."""
        if embedder:
            self._want_embedder = True
        if not hold_stages:
            self._stages_go.set()
        if self._loader is None:
            if hold_stages:
                self._stages_go.clear()
            self._load_started = time.perf_counter()
            # Not a daemon: the interpreter waits for a load in flight at exit instead of tearing
            # down under a thread that is inside torch's C++ (which aborts the process).
            self._loader = threading.Thread(target=self._load, name="mugpos-model-loader", daemon=False)
            self._loader.start()

    @property
    def _measure_fn(self) -> Callable[..., tuple[Any, ...]]:
        return measure_packed if self.cpu.warm else measure_desk_scene

    @property
    def holding(self) -> bool:
        """A load is under way with its warm stages held (`start(hold_stages=True)`)."""
        return self._loader is not None and not self._stages_go.is_set()

    @property
    def loads_light(self) -> bool:
        """Whether loading imports no torch: `.onnx` weights on ONNX Runtime and no CLIP. Such a load
        is cheap on the interpreter lock (a few imports; the session is built and run in C++ with
        the lock released), so a server may start it before its own handshake instead of after."""
        s = self.settings
        onnx = s.detector_weights.strip().lower().endswith(".onnx") and s.detector_backend != "ultralytics"
        return onnx and s.embedder != "clip"

    def _load(self) -> None:
        try:
            self._stage = "loading detector"
            t0 = time.perf_counter()
            from mugpos.engine.detector import Detector

            det = Detector(self.settings)
            det.load()
            if self.settings.warmup:
                det.warmup()
            self.load_seconds["detector"] = round(time.perf_counter() - t0, 3)
            self.detector = det
            if self.settings.warmup:
                self._stages_go.wait(STAGES_HOLD_MAX_S)  # a hold nobody lifts ends by itself
                self._stage = "warming the stages"
                t0 = time.perf_counter()
                # With an analysis already waiting, only import: a dummy plane fit and picture
                # would delay the real one by as long as they take.
                _warm_stages(rehearse=lambda: self._waiting == 0)
                self.load_seconds["stages"] = round(time.perf_counter() - t0, 3)
            self._make_batchers()
            if self._want_embedder:
                self._load_embedder()
            self._stage = "ready"
        except BaseException as exc:  # surfaced to every waiting caller
            self._load_error = exc
            self._stage = "failed"
            log.error("model loading failed: %s", getattr(exc, "message", exc))
        finally:
            self._ready.set()
        if self.detector is not None:
            self._after_the_first_answer()

    def _after_the_first_answer(self) -> None:
        """What only concurrent work needs, started once the first answer is out (or after a few
        idle seconds), in this loader thread: the CPU-stage worker process (its start costs ~1.5 s
        of CPU, which on a busy machine the first answer would otherwise share) and the detector's
        one-thread lane sessions (a batch-1 ONNX export on several cores). Until the worker is warm
        the CPU stages run in threads here, as they would without one."""
        deadline = time.perf_counter() + LANES_IDLE_WAIT_S
        while self.analyses == 0 and time.perf_counter() < deadline and not self._closing:
            time.sleep(0.02)
        # A moment more: the first answer's last stages (picture, store, reply) go out alone, and a
        # one-shot door (`mugpos analyze`) closes before the lanes cost it anything.
        grace = time.perf_counter() + LANES_GRACE_S
        while time.perf_counter() < grace and not self._closing:
            time.sleep(0.02)
        if self._closing:
            return
        self.cpu.start()
        if not self.settings.warmup:
            return
        t0 = time.perf_counter()
        try:
            self.detector.make_lanes()
        except Exception as exc:  # the lanes open on first overlap instead
            log.warning("could not open the detector's lanes early: %s", exc)
        self.load_seconds["lanes"] = round(time.perf_counter() - t0, 3)

    def embedder_unavailable(self) -> str | None:
        """Why the embedder cannot serve (known without waiting), or None when it may."""
        if self.settings.embedder != "clip":
            return "disabled: MUGPOS_EMBEDDER=none"
        if self._emb_tried and self.embedder is None:
            return self.embedder_note
        return None

    def _load_embedder(self) -> None:
        """Blocking and idempotent: load CLIP once; a failure disables it with one clear line."""
        with self._emb_lock:
            if self._emb_tried:
                return
            if self.settings.embedder != "clip":
                self.embedder_note = "disabled: MUGPOS_EMBEDDER=none"
                self._emb_tried = True
                return
            stage, self._stage = self._stage, "loading embedder"
            t0 = time.perf_counter()
            try:
                from mugpos.engine.embedder import Embedder

                emb = Embedder(self.settings)
                emb.load()
                self.embedder = emb
                self.embedder_note = emb.identity
                self._make_emb_batcher()
            except MugposError as exc:
                # Embedding is optional: analyses go on without it and say why, once.
                self.embedder_note = f"disabled: {exc.message}"
                log.warning("image embedding off: %s. %s", exc.message, exc.hint or "")
            finally:
                self.load_seconds["embedder"] = round(time.perf_counter() - t0, 3)
                self._emb_tried = True
                if self._stage == "loading embedder":
                    self._stage = stage

    def _make_batchers(self) -> None:
        from mugpos.engine.batching import LaneDispatcher, MicroBatcher, shape_key

        s = self.settings
        assert self.detector is not None
        if s.batching and self.detector.lanes > 1:
            # A batch-1 export cannot share a forward pass: run each picture on its own lane as
            # soon as one is free, and let it go on the moment it is done (see LaneDispatcher).
            self._det_batcher = LaneDispatcher(
                self.detector.detect, lanes=self.detector.lanes, name="detector"
            )
            return
        self._det_batcher = MicroBatcher(
            self.detector.detect,
            max_size=s.batch_max_size,
            max_wait_ms=s.batch_max_wait_ms,
            name="detector",
            enabled=s.batching,
            key=shape_key,  # mixed shapes would be padded to a square: slower than apart
        )

    def _make_emb_batcher(self) -> None:
        from mugpos.engine.batching import MicroBatcher

        s = self.settings
        self._emb_batcher = MicroBatcher(
            self._embed_batch,
            max_size=s.batch_max_size,
            max_wait_ms=s.batch_max_wait_ms,
            name="embedder",
            enabled=s.batching,
        )

    def _embed_batch(self, images: list[Image.Image]) -> list[Any]:
        assert self.embedder is not None
        return list(self.embedder.embed_images(images))

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._load_error is None

    async def wait_ready(self, progress: Progress | None = None, *, embedder: bool = True) -> None:
        """Wait for the background load (and CLIP, when `embedder`), reporting progress; re-raise
        a failure clearly."""
        self.start(embedder=embedder)
        last = ""
        self._waiting += 1
        try:
            while not self._ready.is_set():
                if progress is not None and self._stage != last:
                    last = self._stage
                    await progress(0.05 if "detector" in last else 0.15, f"warming up: {last}")
                await asyncio.sleep(0.01)
        finally:
            self._waiting -= 1
        if self._load_error is not None:
            err = self._load_error
            if isinstance(err, MugposError):
                raise err
            raise ModelError(
                f"models failed to load: {err}", hint="check MUGPOS_DETECTOR_WEIGHTS and the logs"
            )
        if embedder and not self._emb_tried:
            if progress is not None:
                await progress(0.15, "warming up: loading embedder")
            await asyncio.to_thread(self._load_embedder)

    # --- analysis -----------------------------------------------------------------------
    def _cache_key(self, sha256: str, px_per_cm: float | None, embed: bool) -> str:
        assert self.detector is not None and self.cache is not None
        emb = self.embedder_note if embed else "no embedding"
        return self.cache.key("analysis/2", sha256, self.detector.identity, emb, repr(px_per_cm))

    async def analyze(
        self,
        img: LoadedImage,
        *,
        px_per_cm: float | None = None,
        progress: Progress | None = None,
        embed: bool = True,
    ) -> Analysis:
        """Detect and measure; `embed=False` (checking rules) neither loads nor runs CLIP."""
        t_start = time.perf_counter()
        await self.wait_ready(progress, embedder=embed)
        assert self.detector is not None and self._det_batcher is not None
        key = self._cache_key(img.sha256, px_per_cm, embed) if self.cache is not None else ""
        if self.cache is not None:
            raw, tier = await self.cache.get(key)
            if raw is not None:
                cached = Analysis.model_validate_json(raw)
                cached.image = cached.image.model_copy(update={"sha256": img.sha256, "source": img.source})
                cached.timings = Timings(total_ms=_ms(t_start), cache=tier)  # type: ignore[arg-type]
                return cached
        timings = Timings()
        t0 = time.perf_counter()
        fitted = await asyncio.to_thread(fit, img.image, self.settings.detector_imgsz)
        timings.decode_ms = _ms(t0)
        if progress:
            await progress(0.3, "detecting objects")
        t0 = time.perf_counter()
        detections = unfit(await self._det_batcher.submit(fitted.array), fitted)
        timings.detect_ms = _ms(t0)
        info = ImageInfo(width=img.width, height=img.height, focal_35mm=read_focal_35mm(img.data))
        scene = Scene(image=info, objects=detections)

        embedding: list[float] | None = None
        warnings: list[str] = []
        if embed and self._emb_batcher is not None and self.embedder is not None:
            if progress:
                await progress(0.6, "embedding image and mug crops")
            t0 = time.perf_counter()
            cups = scene.mugs
            crops = [img.image.crop(tuple(round(c) for c in m.box)) for m in cups]
            vecs = await self._emb_batcher.submit_many([img.image, *crops])
            embedding = [float(x) for x in vecs[0]]
            if cups:
                import numpy as np

                for cup, adv in zip(cups, self.embedder.advisories(np.stack(vecs[1:])), strict=True):
                    cup.advisory = adv
            timings.embed_ms = _ms(t0)
        elif embed:
            skip = "" if "MUGPOS_EMBEDDER=none" in self.embedder_note else "; MUGPOS_EMBEDDER=none skips CLIP"
            warnings.append(f"image embedding {self.embedder_note}; search by image is unavailable{skip}")

        t0 = time.perf_counter()
        # The plane fit is CPU work (tens of ms to seconds on busy photos): in a worker process,
        # off the event loop and this interpreter's lock (see `mugpos.engine.cpu`).
        scene, desk, scale, surface, mugs, relations = await self.cpu.run(
            self._measure_fn, scene, px_per_cm=px_per_cm
        )
        timings.geometry_ms = _ms(t0)
        warnings.extend(scale_warnings(scale, scene))
        result = Analysis(
            image=ImageRef.model_validate(
                {**scene.image.model_dump(), "sha256": img.sha256, "source": img.source}
            ),
            scene=scene,
            scale=scale,
            surface=surface,
            mugs=mugs,
            relations=relations,
            embedding=embedding,
            embedder=self.embedder_note,
            models={
                "detector": self.detector.identity,
                "embedder": self.embedder.identity if self.embedder else None,
            },
            timings=timings,
            warnings=warnings,
        )
        result.keep_desk(desk)
        timings.total_ms = _ms(t_start)
        self.analyses += 1
        if self.cache is not None:
            await self.cache.set(key, result.model_dump_json().encode())
        return result

    async def analyze_scene(self, scene: Scene) -> Analysis:
        """A client's own detections: no models, just measurement."""
        t0 = time.perf_counter()
        scene, desk, scale, surface, mugs, relations = await self.cpu.run(self._measure_fn, scene)
        out = Analysis(
            image=ImageRef.model_validate(
                {**scene.image.model_dump(), "source": scene.image.source or "scene"}
            ),
            scene=scene,
            scale=scale,
            surface=surface,
            mugs=mugs,
            relations=relations,
            embedder="not used: scene supplied by the client",
            timings=Timings(geometry_ms=_ms(t0), total_ms=_ms(t0)),
            warnings=scale_warnings(scale, scene),
        )
        out.keep_desk(desk)
        return out

    async def embed_text(self, text: str) -> list[float]:
        await self.wait_ready()
        if self.embedder is None:
            raise ConfigError(
                f"text search needs the CLIP embedder, which is {self.embedder_note}",
                hint="set MUGPOS_EMBEDDER=clip with CLIP weights available (MUGPOS_CLIP_PRETRAINED)",
            )
        vec = await asyncio.to_thread(self.embedder.embed_texts, [text])
        return [float(x) for x in vec[0]]

    def status(self) -> dict[str, Any]:
        det, emb = self.detector, self.embedder
        return {
            "stage": self._stage,
            "ready": self.ready,
            "error": getattr(self._load_error, "message", str(self._load_error))
            if self._load_error
            else None,
            "device": det.device if det else None,
            "detector": {
                "weights": self.settings.detector_weights,
                "identity": det.identity if det else None,
                "warm": det is not None,
            },
            "embedder": {
                "model": self.settings.clip_model,
                "identity": emb.identity if emb else None,
                "warm": emb is not None,
                "note": self.embedder_note,
            },
            "load_seconds": self.load_seconds,
            "analyses": self.analyses,
            "batching": {
                "enabled": self.settings.batching,
                "detector": self._det_batcher.stats() if self._det_batcher else None,
                "embedder": self._emb_batcher.stats() if self._emb_batcher else None,
            },
            "cpu": self.cpu.status(),
        }

    async def aclose(self) -> None:
        # A load cannot be interrupted; let it finish rather than leave a thread importing torch
        # while the interpreter shuts down (that aborts the process).
        self._stages_go.set()
        self._closing = True
        if self._loader is not None and self._loader.is_alive():
            await asyncio.to_thread(self._loader.join, 120)
        for b in (self._det_batcher, self._emb_batcher):
            if b is not None:
                await b.aclose()
        await asyncio.to_thread(self.cpu.close)


def warm_measure() -> None:
    """A CPU-stage worker's warm-up: the plane fit's imports and one small fit."""
    _warm_stages(draw=False)


def _warm_stages(
    *, rehearse: Callable[[], bool] = lambda: True, measure: bool = True, draw: bool = True
) -> None:
    """What the first analysis would otherwise pay for after the models: the measure stage's imports
    (scipy; `measure`, where the fit runs in this process), the image codecs (`draw`), then, if
    `rehearse()` says so once they are in, one plane fit and one picture (first-call costs, the
    picture's fonts)."""
    if measure:
        from mugpos.scene import measure as _measure  # noqa: F401  (scipy.optimize: ~0.6 s of imports)
    if draw:
        from PIL import Image, JpegImagePlugin, PngImagePlugin  # noqa: F401

        from mugpos.engine.annotate import draw_analysis
    if not rehearse():
        return

    scene = Scene.model_validate(
        {
            "image": {"width": 640, "height": 480},
            "objects": [
                {"label": "cup", "box": [300, 200, 360, 270]},
                {"label": "dining table", "box": [0, 150, 640, 480]},
            ],
        }
    )
    if measure:
        scene, _desk, _scale, _surface, mugs, _relations = measure_desk_scene(scene)
    if draw:
        draw_analysis(Image.new("RGB", (640, 480)), scene, mugs if measure else [])


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
