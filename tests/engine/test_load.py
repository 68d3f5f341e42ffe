"""The engine's background load: holding the warm stages for a server's handshake, and what a
waiting analysis gets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from mugpos.engine.images import load_image
from mugpos.engine.pipeline import Engine
from mugpos.settings import Settings

pytestmark = pytest.mark.anyio


def _settings(weights: Path, tmp_path: Path, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "detector_weights": str(weights),
        "embedder": "none",
        "device": "cpu",
        "data_dir": tmp_path / "data",
        "allowed_dirs": [tmp_path, weights.parent.parent],
    }
    return Settings(_env_file=None, **{**values, **over})  # type: ignore[call-arg]


def test_light_means_no_torch(onnx_weights: Path, tmp_path: Path) -> None:
    assert Engine(_settings(onnx_weights, tmp_path)).loads_light
    assert not Engine(_settings(onnx_weights, tmp_path, embedder="clip")).loads_light
    assert not Engine(_settings(onnx_weights, tmp_path, detector_backend="ultralytics")).loads_light
    assert not Engine(_settings(tmp_path / "yolov8n.pt", tmp_path)).loads_light


async def test_held_stages_wait_for_the_next_start(onnx_weights: Path, tmp_path: Path) -> None:
    engine = Engine(_settings(onnx_weights, tmp_path))
    engine.start(hold_stages=True)
    try:
        deadline = time.monotonic() + 60
        while engine.detector is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert engine.detector is not None, engine.status()
        await asyncio.sleep(0.2)
        assert not engine._stages_go.is_set()
        assert not engine.ready and "stages" not in engine.load_seconds  # held
        engine.start()  # what the MCP server's lifespan does
        await asyncio.wait_for(engine.wait_ready(embedder=False), 60)
        assert engine.ready and "stages" in engine.load_seconds
    finally:
        await engine.aclose()


async def test_an_analysis_waiting_for_a_held_load_lets_it_go(
    onnx_weights: Path, coffee_png: Path, tmp_path: Path
) -> None:
    """The first analysis must never wait for a hold (nor for a rehearsal: it gets the same result)."""
    held = Engine(_settings(onnx_weights, tmp_path))
    held.start(hold_stages=True)
    plain = Engine(_settings(onnx_weights, tmp_path))
    plain.start()
    try:
        img = await load_image(str(coffee_png), held.settings)
        first = await asyncio.wait_for(held.analyze(img, embed=False), 60)
        await plain.wait_ready(embedder=False)
        again = await plain.analyze(img, embed=False)
        assert first.scene == again.scene and first.mugs == again.mugs and first.relations == again.relations
        assert [o.label for o in first.scene.objects].count("cup") == 1
    finally:
        await held.aclose()
        await plain.aclose()


def test_closing_lifts_a_hold(onnx_weights: Path, tmp_path: Path) -> None:
    engine = Engine(_settings(onnx_weights, tmp_path))
    engine.start(hold_stages=True)
    assert not engine._stages_go.is_set()
    asyncio.run(engine.aclose())  # joins the loader: it must not sit out the hold
    assert engine._stages_go.is_set()
    assert engine._loader is not None and not engine._loader.is_alive()


async def test_the_lanes_open_after_the_first_answer(
    onnx_weights: Path, coffee_png: Path, tmp_path: Path
) -> None:
    """A batch-1 ONNX export on several cores runs concurrent pictures on one-thread lane sessions;
    they open in the background once the first answer is out, so the first burst finds them."""
    engine = Engine(_settings(onnx_weights, tmp_path, threads=2))
    engine.start()
    try:
        await engine.wait_ready(embedder=False)
        assert engine.detector is not None and engine.detector.lanes == 2
        model = engine.detector._require()
        assert model._lanes.qsize() == 0  # not before the first answer: it would slow it
        img = await load_image(str(coffee_png), engine.settings)
        await engine.analyze(img, embed=False)
        deadline = time.monotonic() + 60
        while "lanes" not in engine.load_seconds and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert model._lanes.qsize() == 2
    finally:
        await engine.aclose()
