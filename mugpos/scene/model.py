"""The one vocabulary every stage speaks: a Scene of Detections, in pixels, origin top-left, y down.

This is the JSON of DESIGN.md ("Scene JSON"): what the detector saw, or what a client with its own
detector sends. Pure pydantic, no I/O, no torch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mugpos.scene.labels import MUG_LABELS, slug

Box = tuple[float, float, float, float]
Point = tuple[float, float]
MAX_OUTLINE_POINTS = 256
"""`[x1, y1, x2, y2]` in pixels."""


class ImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown keys are dropped, never echoed back

    width: int = Field(gt=0, le=100_000)
    height: int = Field(gt=0, le=100_000)
    source: str | None = Field(None, max_length=500, description="where the picture came from, if known")
    focal_35mm: float | None = Field(
        None,
        gt=0,
        le=2000,
        description="35 mm-equivalent focal length in mm from the photo's EXIF (FocalLengthIn35mmFilm, "
        "or FocalLength with the sensor's resolution tags); the plane fit uses it as the camera's focal length",
    )


class Advisory(BaseModel):
    """What CLIP thinks a detected cup really is (coffee mug, glass, paper cup, ...); advice only."""

    label: str
    score: float = Field(ge=0.0, le=1.0)


Source = Literal["given", "exif", "estimated", "assumed"]
"""Where a number came from: the caller, the photo's EXIF, fitted from the objects, or a prior."""


class Footprint(BaseModel):
    """A rectangle on the table plane, in cm: x to the right, y away from the camera.

    `rect` is `[x1, y1, x2, y2]` (x1 < x2, y1 < y2: y1 is the front side); `sigma_cm` the 1-sigma
    uncertainty of its position (the larger of x and y).
    """

    rect: tuple[float, float, float, float]
    sigma_cm: float = Field(0.0, ge=0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.rect[0] + self.rect[2]) / 2, (self.rect[1] + self.rect[3]) / 2)


class Estimate(BaseModel):
    """One number of the plane with its 1-sigma uncertainty and where it came from."""

    value: float
    sigma: float = Field(0.0, ge=0.0)
    source: Source


class CameraHint(BaseModel):
    """What a caller knows about the camera. Each given value is held fixed by the plane fit."""

    model_config = ConfigDict(extra="forbid")

    focal_px: float | None = Field(None, gt=0, le=1_000_000, description="focal length in pixels")
    elevation_deg: float | None = Field(
        None, ge=5, le=90, description="angle of the view below the horizontal: 90 = straight down"
    )
    height_cm: float | None = Field(None, gt=0, le=10_000, description="camera height above the table, cm")


class Plane(BaseModel):
    """How the camera saw the table plane (single-view metrology, see `mugpos.scene.plane`).

    `kind="top_down"`: one scale for the whole picture (`px_per_cm`), as when the caller gives it.
    `kind="perspective"`: a pinhole camera `camera_height_cm` above the table looking down at
    `elevation_deg`, focal length `focal_px`, principal point at the image centre, no roll; the
    horizon is the image row `horizon_y_px` (None when it lies far outside the picture). Table
    coordinates: origin on the plane below the camera, x to the right, y away from the camera.
    """

    kind: Literal["top_down", "perspective"]
    elevation_deg: Estimate
    focal_px: Estimate
    camera_height_cm: Estimate
    horizon_y_px: float | None = None
    px_per_cm: Estimate = Field(
        description="scale on the table at the image centre row (or where the mugs stand)"
    )
    source: Source = Field(description="provenance of the measurement as a whole (the weakest link)")
    references: list[str] = Field(default_factory=list, description="object ids whose known sizes fixed it")
    outliers: list[str] = Field(default_factory=list, description="object ids the robust fit discounted")
    note: str = ""


EdgeName = Literal["left", "right", "back", "front"]


class TableEdge(BaseModel):
    """One side of the table. `seen=False`: the frame cuts it (or no table was found), so distances
    to it are lower bounds at best; `position_cm` is then where the photo stops showing the table."""

    seen: bool
    position_cm: float | None = Field(None, description="x (left/right) or y (front/back) of the line, cm")
    why: str = ""


class TableSurface(BaseModel):
    """The table the mugs stand on: its footprint on the plane and each edge seen or cut."""

    id: str | None = Field(None, description="object id of the table; None when inferred")
    kind: Literal["table", "inferred"]
    footprint_cm: tuple[float, float, float, float]
    edges: dict[EdgeName, TableEdge]
    note: str = ""


class Detection(BaseModel):
    """One object: a label, a box and how sure the detector was."""

    id: str | None = Field(None, max_length=100)
    label: str = Field(min_length=1, max_length=100)
    box: Box
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    outline: list[Point] | None = Field(
        None,
        max_length=MAX_OUTLINE_POINTS,
        description="the object's outline in pixels, [[x, y], ...] in order, where the detector "
        "segments (a -seg model); a table's outline shows its edges as lines, turn and all",
    )
    advisory: Advisory | None = None
    footprint_cm: Footprint | None = Field(
        None, description="measured: where the object stands on the table plane (output; ignored on input)"
    )

    @field_validator("label")
    @classmethod
    def _norm_label(cls, v: str) -> str:
        return " ".join(v.lower().replace("_", " ").split())

    @field_validator("box")
    @classmethod
    def _valid_box(cls, v: Box) -> Box:
        if not all(math.isfinite(c) for c in v):
            raise ValueError("box coordinates must be finite numbers")
        x1, y1, x2, y2 = v
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box {list(v)} must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return (float(x1), float(y1), float(x2), float(y2))

    @field_validator("outline")
    @classmethod
    def _valid_outline(cls, v: list[Point] | None) -> list[Point] | None:
        if v is None:
            return None
        if len(v) < 3:
            raise ValueError("an outline needs at least 3 points")
        if not all(math.isfinite(c) for p in v for c in p):
            raise ValueError("outline coordinates must be finite numbers")
        return [(float(x), float(y)) for x, y in v]

    @property
    def is_mug(self) -> bool:
        return self.label in MUG_LABELS

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return ((x1 + x2) / 2, (y1 + y2) / 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class Scene(BaseModel):
    """What is in the picture. `px_per_cm` and `camera` given by the caller win over any estimate.

    `plane`, `surface` and each object's `footprint_cm` are what the measure stage found; they are
    outputs: a scene sent back in (a stored analysis, `suggest --scene`) is measured again from its
    boxes and hints, which reproduces them exactly, so they are never mistaken for the caller's hints.
    """

    image: ImageInfo
    px_per_cm: float | None = Field(
        None, gt=0, le=10_000, description="given by the caller: a top-down photo at this scale"
    )
    camera: CameraHint | None = Field(None, description="given by the caller: how the camera saw the desk")
    objects: list[Detection] = Field(default_factory=list, max_length=5000)
    plane: Plane | None = Field(None, description="measured: how the camera saw the table (output)")
    surface: TableSurface | None = Field(
        None, description="measured: the table's footprint and edges (output)"
    )

    @model_validator(mode="after")
    def _assign_ids(self) -> Scene:
        seen: set[str] = set()
        counters: Counter[str] = Counter()
        for obj in self.objects:
            if obj.id is not None:
                if obj.id in seen:
                    raise ValueError(f"duplicate object id {obj.id!r}")
                seen.add(obj.id)
        for obj in self.objects:
            if obj.id is None:
                stem = slug(obj.label)
                while True:
                    counters[stem] += 1
                    candidate = f"{stem}-{counters[stem]}"
                    if candidate not in seen:
                        break
                obj.id = candidate
                seen.add(candidate)
        return self

    def get(self, object_id: str) -> Detection | None:
        return next((o for o in self.objects if o.id == object_id), None)

    def with_labels(self, labels: Iterable[str]) -> list[Detection]:
        wanted = set(labels)
        return [o for o in self.objects if o.label in wanted]

    @property
    def mugs(self) -> list[Detection]:
        return [o for o in self.objects if o.is_mug]


class Scale(BaseModel):
    """Pixels per centimetre and how we know it."""

    px_per_cm: float = Field(gt=0)
    source: Literal["given", "estimated", "assumed"]
    uncertainty_pct: float = Field(0.0, ge=0.0, description="relative 1-sigma uncertainty, percent")
    references: list[str] = Field(default_factory=list, description="object ids the estimate used")
    note: str = ""

    def cm(self, px: float) -> float:
        return px / self.px_per_cm

    def px(self, cm: float) -> float:
        return cm * self.px_per_cm
