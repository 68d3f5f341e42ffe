"""MicroBatcher: real batches through real functions and a real torch module."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mugpos.engine.batching import MicroBatcher
from mugpos.errors import ModelError


class Recorder:
    """A batch function that remembers every batch it saw and which thread ran it."""

    def __init__(self, delay_s: float = 0.0, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.delay_s = delay_s
        self.fail_on = fail_on or set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        bad = self.fail_on.intersection(items)
        if bad:
            raise ValueError(f"bad input {sorted(bad)[0]}")
        return [x * 10 for x in items]


@pytest.mark.anyio
async def test_concurrent_submits_join_batches_and_route_results() -> None:
    rec = Recorder(delay_s=0.01)
    b = MicroBatcher(rec, max_size=8, max_wait_ms=20, name="t")
    results = await asyncio.gather(*(b.submit(i) for i in range(32)))
    assert results == [i * 10 for i in range(32)]
    assert len(rec.batches) < 32  # concurrency joined batches
    assert max(len(x) for x in rec.batches) > 1
    assert all(len(x) <= 8 for x in rec.batches)
    assert sorted(x for batch in rec.batches for x in batch) == list(range(32))
    st = b.stats()
    assert st["items"] == 32 and st["batches"] == len(rec.batches) and st["max_batch"] <= 8
    assert st["queue_depth"] == 0
    await b.aclose()


@pytest.mark.anyio
async def test_fn_runs_on_one_thread_off_the_event_loop() -> None:
    rec = Recorder()
    b = MicroBatcher(rec, max_size=4, max_wait_ms=1, name="t")
    for _ in range(3):
        await asyncio.gather(*(b.submit(i) for i in range(10)))
    assert len(rec.threads) == 1
    assert threading.get_ident() not in rec.threads
    await b.aclose()


@pytest.mark.anyio
async def test_load_grows_batches_while_worker_is_busy() -> None:
    # max_wait 0: only items that queue up while the worker runs can share a batch
    rec = Recorder(delay_s=0.03)
    b = MicroBatcher(rec, max_size=64, max_wait_ms=0, name="t")
    first = asyncio.ensure_future(b.submit(0))
    await asyncio.sleep(0.005)  # the first batch is running now
    rest = await asyncio.gather(*(b.submit(i) for i in range(1, 20)))
    assert await first == 0 and rest == [i * 10 for i in range(1, 20)]
    assert rec.batches[0] == [0]
    assert rec.batches[1] == list(range(1, 20))
    await b.aclose()


@pytest.mark.anyio
async def test_submit_many_keeps_order_and_shares_batches() -> None:
    rec = Recorder()
    b = MicroBatcher(rec, max_size=5, max_wait_ms=10, name="t")
    out = await b.submit_many(list(range(12)))
    assert out == [i * 10 for i in range(12)]
    assert [len(x) for x in rec.batches] == [5, 5, 2]
    assert await b.submit_many([]) == []
    await b.aclose()


@pytest.mark.anyio
async def test_a_failing_item_fails_alone() -> None:
    rec = Recorder(fail_on={7})
    b = MicroBatcher(rec, max_size=16, max_wait_ms=20, name="t")
    results = await asyncio.gather(*(b.submit(i) for i in range(10)), return_exceptions=True)
    for i, r in enumerate(results):
        if i == 7:
            assert isinstance(r, ValueError) and "bad input 7" in str(r)
        else:
            assert r == i * 10
    st = b.stats()
    assert st["failed_items"] == 1 and st["fallback_batches"] >= 1
    # the batcher is still healthy afterwards
    assert await b.submit(3) == 30
    with pytest.raises(ValueError):
        await b.submit_many([1, 7, 2])
    await b.aclose()


@pytest.mark.anyio
async def test_wrong_result_count_is_a_model_error() -> None:
    b = MicroBatcher(lambda xs: xs[:-1], max_size=4, max_wait_ms=1, name="short")
    with pytest.raises(ModelError, match="returned 0 results for 1 inputs"):
        await b.submit(1)
    await b.aclose()


@pytest.mark.anyio
async def test_cancelled_caller_before_dispatch_is_dropped() -> None:
    rec = Recorder(delay_s=0.05)
    b = MicroBatcher(rec, max_size=64, max_wait_ms=0, name="t")
    blocker = asyncio.ensure_future(b.submit(0))
    await asyncio.sleep(0.01)  # worker busy with [0]
    doomed = asyncio.ensure_future(b.submit(99))
    keep = asyncio.ensure_future(b.submit(1))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await blocker == 0 and await keep == 10
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert all(99 not in batch for batch in rec.batches)
    await b.aclose()


@pytest.mark.anyio
async def test_cancelled_caller_after_dispatch_does_not_break_others() -> None:
    rec = Recorder(delay_s=0.05)
    b = MicroBatcher(rec, max_size=8, max_wait_ms=5, name="t")
    tasks = [asyncio.ensure_future(b.submit(i)) for i in range(4)]
    await asyncio.sleep(0.02)  # dispatched and running
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [done[0], done[2], done[3]] == [0, 20, 30]
    assert rec.batches == [[0, 1, 2, 3]]
    assert await b.submit(5) == 50
    await b.aclose()


@pytest.mark.anyio
async def test_lone_item_is_dispatched_without_other_arrivals() -> None:
    rec = Recorder()
    b = MicroBatcher(rec, max_size=64, max_wait_ms=50, name="t")
    # nothing else ever arrives: the timer alone must send it (generous bound, structure not speed)
    assert await asyncio.wait_for(b.submit(4), timeout=5.0) == 40
    assert rec.batches == [[4]]
    await b.aclose()


@pytest.mark.anyio
async def test_disabled_runs_each_item_alone_on_the_worker() -> None:
    rec = Recorder()
    b = MicroBatcher(rec, max_size=16, max_wait_ms=50, name="off", enabled=False)
    out = await asyncio.gather(*(b.submit(i) for i in range(6)))
    assert out == [i * 10 for i in range(6)]
    assert rec.batches == [[i] for i in range(6)]
    assert len(rec.threads) == 1 and threading.get_ident() not in rec.threads
    assert b.stats()["enabled"] is False and b.stats()["mean_batch"] == 1.0
    await b.aclose()


@pytest.mark.anyio
async def test_closed_batcher_refuses_with_clear_error() -> None:
    b = MicroBatcher(Recorder(), max_size=4, max_wait_ms=1, name="t")
    assert await b.submit(1) == 10
    await b.aclose()
    with pytest.raises(ModelError) as ei:
        await b.submit(2)
    assert ei.value.code == "engine_closed"


def test_reusable_from_a_new_event_loop() -> None:
    rec = Recorder()
    b = MicroBatcher(rec, max_size=4, max_wait_ms=1, name="t")
    assert asyncio.run(b.submit(1)) == 10
    assert asyncio.run(b.submit(2)) == 20
    assert b.stats()["items"] == 2


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_size=0, max_wait_ms=1, name="t")
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_size=1, max_wait_ms=-1, name="t")


@pytest.mark.anyio
async def test_real_torch_module_batched_equals_one_by_one() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    ).eval()
    seen: list[int] = []

    def forward(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        seen.append(len(xs))
        with torch.inference_mode():
            return list(net(torch.stack(xs)))

    inputs = [torch.randn(3, 16, 16) for _ in range(12)]
    b = MicroBatcher(forward, max_size=6, max_wait_ms=20, name="torch")
    outs = await asyncio.gather(*(b.submit(x) for x in inputs))
    assert len(seen) < len(inputs) and max(seen) <= 6
    with torch.inference_mode():
        for x, y in zip(inputs, outs, strict=True):
            torch.testing.assert_close(y, net(x[None])[0], rtol=1e-4, atol=1e-5)
    # a malformed input (wrong channel count) breaks the stacked batch but fails only its caller
    bad = torch.randn(4, 16, 16)
    res = await asyncio.gather(
        b.submit(inputs[0]), b.submit(bad), b.submit(inputs[1]), return_exceptions=True
    )
    assert isinstance(res[1], RuntimeError)
    torch.testing.assert_close(res[0], outs[0])
    torch.testing.assert_close(res[2], outs[1])
    await b.aclose()


@pytest.mark.anyio
async def test_key_groups_batches_oldest_first() -> None:
    import numpy as np

    from mugpos.engine.batching import shape_key

    seen: list[list[tuple[int, ...]]] = []

    def fn(arrs: list[np.ndarray]) -> list[tuple[int, ...]]:
        seen.append([a.shape for a in arrs])
        return [a.shape for a in arrs]

    b = MicroBatcher(fn, max_size=8, max_wait_ms=20, name="shapes", key=shape_key)
    shapes = [(4, 6, 3), (6, 4, 3), (4, 6, 3), (6, 4, 3), (4, 6, 3)]
    out = await asyncio.gather(*(b.submit(np.zeros(s, np.uint8)) for s in shapes))
    assert out == shapes
    assert all(len(set(batch)) == 1 for batch in seen)  # never mixed shapes in one call
    assert seen[0] == [(4, 6, 3)] * 3  # the oldest item's group goes first, whole
    assert seen[1] == [(6, 4, 3)] * 2
    await b.aclose()


@pytest.mark.anyio
async def test_unkeyable_item_rides_alone_and_fails_alone() -> None:
    b = MicroBatcher(
        lambda xs: [len(x) for x in xs], max_size=8, max_wait_ms=10, name="k", key=lambda x: x[0]
    )
    res = await asyncio.gather(b.submit("ab"), b.submit(""), b.submit("ac"), return_exceptions=True)
    assert res[0] == 2 and res[2] == 2
    assert res[1] == 0  # key() raised for "" but the item still ran, alone
    await b.aclose()


def test_lone_item_after_quiet_spell_is_not_held_for_the_wait() -> None:
    """Sparse traffic goes at once even with a huge wait; a burst still shares one batch."""
    from mugpos.engine.batching import MicroBatcher

    async def run() -> dict[int, int]:
        b: MicroBatcher[int, int] = MicroBatcher(
            lambda xs: [x * 2 for x in xs], max_size=2, max_wait_ms=60_000, name="t"
        )
        try:
            assert await asyncio.wait_for(b.submit(1), 10) == 2  # would wait 60 s if held
            await asyncio.sleep(0.01)
            assert await asyncio.gather(b.submit(2), b.submit(3)) == [4, 6]
            return b.stats()["batch_sizes"]
        finally:
            await b.aclose()

    assert asyncio.run(run()) == {1: 1, 2: 1}


# --- LaneDispatcher: a model that cannot batch -----------------------------------------------------
@pytest.mark.anyio
async def test_lanes_run_items_alone_side_by_side_and_return_each_when_done() -> None:
    from mugpos.engine.batching import LaneDispatcher

    started = threading.Barrier(2, timeout=10)  # two items must be in fn at the same time

    def fn(items: list[int]) -> list[int]:
        assert len(items) == 1  # never a batch
        if items[0] < 2:
            started.wait()
        time.sleep(0.05 if items[0] == 0 else 0.0)
        return [items[0] * 10]

    lanes = LaneDispatcher(fn, lanes=2, name="t")
    order: list[int] = []

    async def one(i: int) -> int:
        r = await lanes.submit(i)
        order.append(i)
        return r

    assert await asyncio.gather(one(0), one(1)) == [0, 10]
    assert order == [1, 0]  # item 1 came back while item 0 was still in the model
    assert await lanes.submit_many([3, 4, 5]) == [30, 40, 50]
    st = lanes.stats()
    assert st["items"] == st["batches"] == 5 and st["max_batch"] == 1 and st["lanes"] == 2
    assert st["inflight"] == 0 and st["queue_depth"] == 0
    await lanes.aclose()
    with pytest.raises(ModelError) as closed:
        await lanes.submit(1)
    assert closed.value.code == "engine_closed"


@pytest.mark.anyio
async def test_a_failing_item_on_a_lane_fails_alone() -> None:
    from mugpos.engine.batching import LaneDispatcher

    lanes = LaneDispatcher(Recorder(fail_on={3}), lanes=2, name="t")
    results = await asyncio.gather(*(lanes.submit(i) for i in range(5)), return_exceptions=True)
    assert [r for r in results if not isinstance(r, Exception)] == [0, 10, 20, 40]
    assert isinstance(results[3], ValueError)
    assert lanes.stats()["failed_items"] == 1
    with pytest.raises(ValueError):
        await lanes.submit_many([1, 3])
    await lanes.aclose()
