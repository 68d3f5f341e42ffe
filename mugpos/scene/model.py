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
"""`[x1, y1, x2, y2]` in pixels."""


class ImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown keys are dropped, never echoed back

    width: int = Field(gt=0, le=100_000)
    height: int = Field(gt=0, le=100_000)
    source: str | None = Field(None, max_length=500, description="where the picture came from, if known")


class Advisory(BaseModel):
    """What CLIP thinks a detected cup really is (coffee mug, glass, paper cup, ...); advice only."""

    label: str
    score: float = Field(ge=0.0, le=1.0)


class Detection(BaseModel):
    """One object: a label, a box and how sure the detector was."""

    id: str | None = Field(None, max_length=100)
    label: str = Field(min_length=1, max_length=100)
    box: Box
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    advisory: Advisory | None = None

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
    """What is in the picture. `px_per_cm` given by the caller wins over any estimate."""

    image: ImageInfo
    px_per_cm: float | None = Field(None, gt=0, le=10_000)
    objects: list[Detection] = Field(default_factory=list, max_length=5000)

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
