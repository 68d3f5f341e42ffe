"""Records and scenes the storage tests share (imported by name: tests/ is not a package)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mugpos.scene.model import Scale, Scene
from mugpos.stores.layouts import LayoutRecord, layout_vector

DATA = Path(os.environ.get("MUGPOS_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SCENES = DATA / "coco-cups" / "scenes"
needs_data = pytest.mark.skipif(
    not SCENES.is_dir(), reason=f"test data not found at {SCENES} (MUGPOS_TEST_DATA)"
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCALE = Scale(px_per_cm=10.0, source="assumed")


def coco_scenes() -> list[tuple[str, Scene]]:
    return [(p.stem, Scene.model_validate_json(p.read_text())) for p in sorted(SCENES.glob("*.json"))]


def make_record(aid: str, scene: Scene, emb: list[float] | None, i: int = 0, **kw) -> LayoutRecord:
    labels = [o.label for o in scene.objects]
    return LayoutRecord(
        analysis_id=aid,
        created_at=T0 + timedelta(days=i),
        image_sha256="0" * 64,
        scene=scene,
        scale=SCALE,
        embedding=emb,
        layout_vector=layout_vector(scene, SCALE),
        labels=labels,
        has_violations=kw.pop("has_violations", i % 2 == 1),
        summary=f"{len(scene.objects)} objects",
        analysis={"analysis_id": aid, "n": len(scene.objects)},
        **kw,
    )


def simple_scene(mug_x: float, *, w: int = 1000, h: int = 800, laptop: bool = True) -> Scene:
    objs = [
        {"label": "dining table", "box": [0, 100, w, h]},
        {"label": "cup", "box": [mug_x, 300, mug_x + 80, 380]},
    ]
    if laptop:
        objs.append({"label": "laptop", "box": [400, 250, 700, 500]})
    return Scene.model_validate({"image": {"width": w, "height": h}, "objects": objs})


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
