"""Fixtures for the rules tests: hand-made scenes at a known scale (10 px per cm)."""

from __future__ import annotations

from typing import Any

import pytest

from mugpos.scene.model import Scale, Scene

PPC = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def scale() -> Scale:
    return Scale(px_per_cm=PPC, source="given")


def make_scene(
    *objects: tuple[str, str, tuple[float, float, float, float]], width: int = 1600, height: int = 1000
) -> Scene:
    """Objects as (id, label, box)."""
    objs: list[dict[str, Any]] = [{"id": i, "label": lab, "box": list(b)} for i, lab, b in objects]
    return Scene.model_validate(
        {"image": {"width": width, "height": height}, "px_per_cm": PPC, "objects": objs}
    )


@pytest.fixture(name="make_scene")
def make_scene_fixture() -> Any:
    return make_scene
