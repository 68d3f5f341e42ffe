"""A call cancelled mid-way: its queue slot and its model thread are given back, others go on.

The first test drives the real `MicroBatcher` with a model function that blocks until released, so
the cancellation provably lands while the model runs. The second cancels real analyses (ONNX
detector) at every stage they may be in and checks the engine still serves, with nothing left queued.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from mugpos.engine.batching import MicroBatcher
from mugpos.operations import Mugpos

pytestmark = pytest.mark.anyio


class GatedModel:
    """Doubles its inputs; the first batch blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("gate never opened")
        return [2 * x for x in items]


async def test_cancel_while_model_runs_then_keep_serving() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_size=4, max_wait_ms=1.0, name="gated")
    try:
        running = asyncio.create_task(batcher.submit(1))
        await asyncio.to_thread(model.entered.wait, 10)
        assert batcher.stats()["inflight"] == 1
        # queued behind the running batch, then cancelled before it ever runs
        queued = asyncio.create_task(batcher.submit(2))
        others = [asyncio.create_task(batcher.submit(x)) for x in (10, 11, 12)]
        await asyncio.sleep(0.01)
        running.cancel()
        queued.cancel()
        model.gate.set()
        for t in (running, queued):
            with pytest.raises(asyncio.CancelledError):
                await t
        async with asyncio.timeout(10):
            assert await asyncio.gather(*others) == [20, 22, 24]
            assert await batcher.submit(5) == 10  # and it keeps serving afterwards
        st = batcher.stats()
        assert st["inflight"] == 0 and st["queue_depth"] == 0
        ran = [x for b in model.batches for x in b]
        assert 2 not in ran, "a call cancelled while queued must not cost a model run"
    finally:
        model.gate.set()
        await batcher.aclose()


async def test_cancelled_submit_many_releases_its_items() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_size=2, max_wait_ms=1.0, name="gated-many")
    try:
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.to_thread(model.entered.wait, 10)
        many = asyncio.create_task(batcher.submit_many([1, 2, 3, 4, 5]))
        await asyncio.sleep(0.01)
        assert batcher.stats()["queue_depth"] == 5
        many.cancel()
        with pytest.raises(asyncio.CancelledError):
            await many
        assert batcher.stats()["queue_depth"] == 0
        model.gate.set()
        async with asyncio.timeout(10):
            assert await first == 0
            assert await batcher.submit_many([7, 8]) == [14, 16]
        ran = [x for b in model.batches for x in b]
        assert not {1, 2, 3, 4, 5} & set(ran)
    finally:
        model.gate.set()
        await batcher.aclose()


async def test_cancelled_analyses_leave_the_engine_serving(test_data: Path, make_settings) -> None:
    app = Mugpos(make_settings(cache_l2_bytes=0))  # no cache: every call really reaches the detector
    photos = sorted((test_data / "coco-cups" / "images").glob("*.jpg"))[:6]
    coffee = str(test_data / "photos" / "coffee.png")

    async def analyze(path: str) -> int:
        out = await app.analyze(path, use_saved_rules=False, store=False, annotate=False)
        return len(out.result.scene.objects)

    try:
        baseline = await analyze(coffee)  # models warm
        threads_before = threading.active_count()
        for delay in (0.0, 0.005, 0.02, 0.05, 0.1):  # loading, queued, in the model, after
            doomed = [asyncio.create_task(analyze(str(p))) for p in photos]
            keep = asyncio.create_task(analyze(coffee))
            await asyncio.sleep(delay)
            for t in doomed:
                t.cancel()
            async with asyncio.timeout(60):
                results = await asyncio.gather(*doomed, return_exceptions=True)
                assert await keep == baseline
            for r in results:
                assert isinstance(r, asyncio.CancelledError | int), repr(r)
        async with asyncio.timeout(60):
            assert await analyze(coffee) == baseline
        batching = (await app.status()).batching["detector"]
        assert batching["inflight"] == 0 and batching["queue_depth"] == 0
        assert batching["failed_items"] == 0
        # to_thread workers are pooled (at most min(32, cpus + 4)); 30 cancelled calls must not add more
        pool = min(32, (os.cpu_count() or 1) + 4)
        assert threading.active_count() <= threads_before + pool
    finally:
        await app.aclose()
