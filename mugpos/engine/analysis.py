"""`Analysis`: one analysis, one type, from the pipeline to storage and back.

The engine makes it (`Engine.analyze`, or `analyze_scene` for a client's own detections); the
operations give it an id and a time, the results add what rules said of it (`AnalyzeResult` is an
`Analysis` plus verdicts, summary and resource links, built without copying a field); the layout
store keeps that JSON, and a stored analysis read back is used as it is: checking or suggesting for
an `analysis_id` never measures the scene again, so its scale keeps its source and uncertainty, and
its models (which detector, which embedder) stay named.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, PrivateAttr

from mugpos.engine.timings import Timings
from mugpos.scene.geometry import MugPosition, Relation, Surface
from mugpos.scene.model import ImageInfo, Scale, Scene

if TYPE_CHECKING:
    from mugpos.scene.measure import Desk


class ImageRef(ImageInfo):
    """The picture an analysis is about: its size, where it came from and its content hash."""

    sha256: str | None = Field(None, description="SHA-256 of the image bytes (None for a client's scene)")


class Analysis(BaseModel):
    """Everything measured about one picture (or one client-supplied scene), with its provenance."""

    analysis_id: str | None = Field(None, description="set once the analysis is kept")
    created_at: datetime | None = None
    image: ImageRef
    scene: Scene = Field(
        description="the Scene JSON (reusable as `suggest --scene`), px_per_cm set to the scale used"
    )
    scale: Scale
    surface: Surface
    mugs: list[MugPosition]
    relations: list[Relation]
    embedding: list[float] | None = Field(None, description="L2-normalised CLIP image embedding")
    embedder: str = Field(description="CLIP model identity, or 'disabled: <reason>'")
    models: dict[str, str | None] = Field(
        default_factory=dict, description="the models that produced it (detector and embedder identities)"
    )
    timings: Timings = Field(default_factory=Timings)
    warnings: list[str] = Field(default_factory=list)
    _desk: Desk | None = PrivateAttr(None)
    # The desk as a CPU-stage worker process measured it, pickled there: this process never needs
    # the Desk class (and its scipy imports) unless something here asks for `desk`.
    _desk_packed: bytes | None = PrivateAttr(None)

    @property
    def image_sha256(self) -> str | None:
        return self.image.sha256

    @property
    def desk(self) -> Desk:
        """The measured desk (fitted once per process; a stored analysis is measured again from its
        boxes and hints, which reproduces the same plane, provenance included)."""
        if self._desk is None and self._desk_packed is not None:
            import pickle

            self._desk = pickle.loads(self._desk_packed)
        if self._desk is None:
            from mugpos.scene.measure import measure_desk  # scipy: kept off the import path

            self._desk = measure_desk(self.scene)
        return self._desk

    def keep_desk(self, desk: Desk | bytes) -> None:
        """Keep the measured desk, as the object or as a worker process's pickle of it."""
        if isinstance(desk, bytes):
            self._desk, self._desk_packed = None, desk
        else:
            self._desk, self._desk_packed = desk, None
