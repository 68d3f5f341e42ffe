"""What a stored layout is, and how two layouts are compared: the part both layout stores share.

`layout_vector` is the geometric descriptor (where each kind of object sits on the surface);
`LayoutRecord` is one analysed layout as stored; `LayoutStore` is the interface both backends
(`embedded.py`, `mongo.py`) implement; `hybrid_scores` mixes image and layout cosine the same way
in both, so a query ranks the same whichever store answers it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mugpos.errors import MugposError
from mugpos.scene.geometry import box_gap, surface_for
from mugpos.scene.labels import DRINK_LABELS, ELECTRONICS_LABELS, MUG_LABELS, SURFACE_LABELS
from mugpos.scene.model import Scale, Scene
from mugpos.stores.health import ComponentHealth

# --- the geometric descriptor -------------------------------------------------------------------

LAYOUT_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("mug", MUG_LABELS),
    ("drinks", DRINK_LABELS - MUG_LABELS),
    ("laptop", frozenset({"laptop"})),
    ("keyboard", frozenset({"keyboard"})),
    ("electronics", ELECTRONICS_LABELS - {"laptop", "keyboard"}),
    ("book", frozenset({"book"})),
    ("dishes", frozenset({"bowl", "fork", "knife", "spoon"})),
)
LAYOUT_GRID = 4
LAYOUT_VERSION = 1
# per group: grid cells + a count; then three whole-scene features (other objects, mug-electronics
# proximity, mug-edge proximity)
LAYOUT_DIM = len(LAYOUT_GROUPS) * (LAYOUT_GRID * LAYOUT_GRID + 1) + 3
_GROUP_OF = {label: i for i, (_, labels) in enumerate(LAYOUT_GROUPS) for label in labels}
_GROUP_WEIGHTS = tuple(1.5 if name == "mug" else 1.0 for name, _ in LAYOUT_GROUPS)
_COUNT_WEIGHT = 0.5
_SCALAR_WEIGHT = 0.5


def layout_vector(scene: Scene, scale: Scale) -> list[float]:
    """A fixed-length, L2-normalised description of where things stand on the supporting surface.

    For each label group a 4x4 occupancy grid over the surface (the fraction of each cell its boxes
    cover, so the vector does not depend on image size; scaled to a fixed length per group, the mug
    group weighted 1.5), a squashed count, and three scene features:
    how many other objects, how close the nearest mug is to electronics and to an edge (in cm, so it
    uses the scale). An empty scene gives the zero vector.
    """
    g = LAYOUT_GRID
    groups = len(LAYOUT_GROUPS)
    grids = np.zeros((groups, g, g), dtype=np.float64)
    counts = np.zeros(groups, dtype=np.float64)
    others = 0
    surface = surface_for(scene).box
    sx1, sy1, sx2, sy2 = surface
    sw, sh = max(sx2 - sx1, 1e-9), max(sy2 - sy1, 1e-9)
    edges = np.linspace(0.0, 1.0, g + 1)
    for obj in scene.objects:
        if obj.label in SURFACE_LABELS:
            continue
        gi = _GROUP_OF.get(obj.label)
        if gi is None:
            others += 1
            continue
        counts[gi] += 1
        x1 = (max(obj.box[0], sx1) - sx1) / sw
        x2 = (min(obj.box[2], sx2) - sx1) / sw
        y1 = (max(obj.box[1], sy1) - sy1) / sh
        y2 = (min(obj.box[3], sy2) - sy1) / sh
        if x2 <= x1 or y2 <= y1:
            continue
        ox = np.clip(np.minimum(edges[1:], x2) - np.maximum(edges[:-1], x1), 0, None) * g
        oy = np.clip(np.minimum(edges[1:], y2) - np.maximum(edges[:-1], y1), 0, None) * g
        grids[gi] += np.outer(oy, ox)
    np.clip(grids, 0.0, 1.0, out=grids)
    count_feat = np.log1p(counts) / math.log(11.0) * _COUNT_WEIGHT

    mugs = scene.mugs
    electronics = scene.with_labels(ELECTRONICS_LABELS)
    near_electronics = 0.0
    near_edge = 0.0
    if mugs and electronics:
        gap_cm = min(scale.cm(box_gap(m.box, e.box)) for m in mugs for e in electronics)
        near_electronics = math.exp(-gap_cm / 20.0)
    if mugs:
        edge_cm = min(
            scale.cm(max(min(m.box[0] - sx1, sx2 - m.box[2], m.box[1] - sy1, sy2 - m.box[3]), 0.0))
            for m in mugs
        )
        near_edge = math.exp(-edge_cm / 10.0)
    scalars = np.array(
        [math.log1p(others) / math.log(11.0), near_electronics, near_edge], dtype=np.float64
    ) * (_SCALAR_WEIGHT)

    # Each present group's grid is scaled to the same length, so a laptop's many cells do not drown
    # out where the mug stands; the mug group weighs most, since that is what users ask about.
    blocks = []
    for i in range(groups):
        cells = grids[i].ravel()
        norm = float(np.linalg.norm(cells))
        if norm > 0:
            cells = cells / norm * _GROUP_WEIGHTS[i]
        blocks.append(np.concatenate([cells, count_feat[i : i + 1]]))
    vec = np.concatenate([*blocks, scalars])
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec = vec / norm
    return [round(float(v), 6) for v in vec]


# --- models ---------------------------------------------------------------------------------------


class LayoutRecord(BaseModel):
    """One analysed layout, with the whole analysis JSON so an analysis id outlives the process."""

    analysis_id: str = Field(min_length=1, max_length=200)
    created_at: datetime
    image_sha256: str | None = None
    scene: Scene
    scale: Scale
    embedding: list[float] | None = None
    layout_vector: list[float]
    labels: list[str] = Field(default_factory=list, description="sorted unique object labels")
    has_violations: bool = False
    summary: str = ""
    thumbnail_key: str | None = None
    annotated_key: str | None = None
    # The whole result as JSON, opaque here: its type (`AnalyzeResult`, an Analysis plus verdicts)
    # lives in `results`, a layer above the stores, and `operations` types it on the way back
    # (`Mugpos.get_analysis`). The index fields above are what the store itself reads.
    analysis: dict[str, Any] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _sorted_unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v))

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class LayoutFilters(BaseModel):
    """What a stored layout must have to be returned; an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")

    labels_all: list[str] = Field(
        default_factory=list,
        description="COCO labels that must all be present, e.g. ['laptop', 'cup']",
    )
    has_violations: bool | None = Field(
        None, description="true: only layouts where a rule was violated; false: only clean ones"
    )
    since: datetime | None = Field(
        None, description="analysed at or after (ISO 8601), e.g. '2026-12-01T00:00:00Z'"
    )
    until: datetime | None = Field(
        None, description="analysed before (ISO 8601), e.g. '2026-12-02T00:00:00Z'"
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and (unknown := [k for k in data if k not in cls.model_fields]):
            raise ValueError(
                f"unknown filter key {', '.join(map(repr, unknown))}; known: {', '.join(cls.model_fields)}"
            )
        return data


class LayoutMatch(BaseModel):
    record: LayoutRecord
    score: float
    image_score: float | None = None
    layout_score: float | None = None


@runtime_checkable
class LayoutStore(Protocol):
    async def put(self, record: LayoutRecord) -> None: ...

    async def get(self, analysis_id: str) -> LayoutRecord | None: ...

    async def search(
        self,
        *,
        embedding: list[float] | None = None,
        layout_vector: list[float] | None = None,
        k: int = 5,
        filters: LayoutFilters | None = None,
        exclude_id: str | None = None,
    ) -> list[LayoutMatch]: ...

    async def count(self) -> int: ...

    def status(self) -> ComponentHealth: ...

    async def aclose(self) -> None: ...


# --- vectors and scoring, shared by both stores -------------------------------------------------------

DEFAULT_IMAGE_WEIGHT = 0.7


def unit_vector(v: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    """`v` as float32 scaled to length 1 (cosine becomes a dot product); a clear error if it is not a vector."""
    arr = np.asarray(v, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise MugposError(
            f"the {what} must be a non-empty list of finite numbers",
            code="bad_vector",
            hint="pass the vector exactly as the embedder or layout_vector() produced it",
        )
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 0 else arr


def check_query(embedding: Any, layout: Any, k: int) -> None:
    """The checks every store makes on a search before touching data, so both fail alike."""
    if embedding is None and layout is None:
        raise MugposError(
            "a layout search needs an image embedding, a layout vector or both",
            code="bad_query",
            hint="search by image, by stored analysis id, by text or by layout geometry",
        )
    if not 1 <= k <= 1000:
        raise MugposError(f"k must be between 1 and 1000, got {k}", code="bad_query", hint="use k=5")


def hybrid_scores(
    img: np.ndarray | None, lay: np.ndarray | None, image_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted cosine; a missing component (NaN) counts as 0 so records cannot gain by lacking it.

    Returns the scores and a mask of rows with at least one component.
    """
    parts = (
        [(img, image_weight), (lay, 1.0 - image_weight)]
        if img is not None and lay is not None
        else [(img if img is not None else lay, 1.0)]
    )
    total = np.zeros(len(parts[0][0]), dtype=np.float64)  # type: ignore[arg-type]
    have = np.zeros(len(total), dtype=bool)
    for arr, w in parts:
        assert arr is not None
        ok = ~np.isnan(arr)
        total += np.where(ok, arr, 0.0) * w
        have |= ok
    return total, have


def rounded_score(v: float) -> float | None:
    """A component score for a match: None where the record lacked that component (NaN)."""
    return None if v is None or math.isnan(v) else round(float(v), 6)
