"""The dual-layer cache against a real redis-server (pytest-redis)."""

from __future__ import annotations

import pytest
from testkit import free_port, needs_redis

from mugpos.stores.cache import DualCache, LRUBytes, RedisTier, cache_key, redact_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_key_is_versioned_and_unambiguous() -> None:
    k = cache_key("analysis", "abc", "yolov8n", "conf=0.25")
    assert k.startswith("mugpos:v1:analysis:")
    assert len(k.rsplit(":", 1)[1]) == 64
    assert k == cache_key("analysis", "abc", "yolov8n", "conf=0.25")
    assert cache_key("analysis", "ab", "c") != cache_key("analysis", "a", "bc")
    assert cache_key("analysis", "x") != cache_key("embedding", "x")


def test_lru_bounded_in_bytes_evicts_least_recent() -> None:
    lru = LRUBytes(100)
    lru.put("a", b"x" * 40)
    lru.put("b", b"y" * 40)
    assert lru.get("a") == b"x" * 40  # a is now the most recent
    lru.put("c", b"z" * 40)  # 120 > 100: evict b
    assert lru.get("b") is None
    assert lru.get("a") is not None and lru.get("c") is not None
    st = lru.status()
    assert st.details["bytes"] == 80 and st.details["items"] == 2 and st.details["evictions"] == 1
    assert st.details["hits"] == 3 and st.details["misses"] == 1 and st.details["hit_rate"] == 0.75
    assert lru.put("big", b"q" * 101) is False and "big" not in lru
    lru.put("a", b"x" * 10)  # replacing adjusts the byte count
    assert lru.status().details["bytes"] == 50


def test_lru_holds_objects_with_given_size() -> None:
    lru = LRUBytes(1000)
    obj = object()
    with pytest.raises(TypeError):
        lru.put("t", obj)
    assert lru.put("t", obj, size=600)
    assert lru.get("t") is obj
    lru.put("u", [1, 2], size=600)
    assert lru.get("t") is None and lru.status().details["bytes"] == 600


def test_lru_zero_budget_is_disabled() -> None:
    lru = LRUBytes(0)
    assert not lru.enabled
    assert lru.put("a", b"x") is False and lru.get("a") is None


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("redis://user:pw@host/1") == "redis://user:***@host/1"
    assert redact_url("redis://host:6379") == "redis://host:6379"


@pytest.mark.anyio
async def test_no_redis_url_means_l1_disabled_not_degraded(make_settings) -> None:
    cache = DualCache(make_settings(cache_l2_bytes=1 << 20))
    assert await cache.get("k") == (None, None)
    await cache.set("k", b"v")
    assert await cache.get("k") == (b"v", "l2")
    st = cache.status()
    assert st["l1"].details["enabled"] is False and st["l1"].degraded is False
    assert st["l2"].details["hits"] == 1 and st["l2"].details["misses"] == 1


@needs_redis
@pytest.mark.anyio
async def test_l2_then_l1_and_a_second_process_gets_l1(redis_proc, make_settings) -> None:
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    settings = make_settings(redis_url=url, cache_l2_bytes=1 << 20, cache_ttl_s=60)
    first, second = DualCache(settings), DualCache(settings)
    key = cache_key("analysis", "img-sha", "model")
    assert await first.get(key) == (None, None)
    await first.set(key, b"result-1")
    assert await first.get(key) == (b"result-1", "l2")
    # A second "process": its own L2 is empty, Redis answers, and the value lands in its L2.
    assert await second.get(key) == (b"result-1", "l1")
    assert await second.get(key) == (b"result-1", "l2")
    st = second.status()
    assert st["l1"].details["hits"] == 1 and st["l1"].degraded is False
    assert st["l2"].details["hits"] == 1 and st["l2"].details["items"] == 1
    # TTL is applied on write.
    import redis

    raw = redis.Redis(host=redis_proc.host, port=redis_proc.port)
    ttl = raw.ttl(key)
    raw.close()
    assert 0 < ttl <= 60
    await first.aclose()
    await second.aclose()


@needs_redis
@pytest.mark.anyio
async def test_redis_down_serves_from_l2_and_recovers_after_backoff(
    redis_proc_restartable, make_settings
) -> None:
    proc = redis_proc_restartable
    clock = FakeClock()
    url = f"redis://{proc.host}:{proc.port}/0"
    settings = make_settings(redis_url=url, cache_l2_bytes=1 << 20, redis_timeout_s=0.5)
    tier = RedisTier(url, timeout_s=0.5, ttl_s=60, clock=clock)
    cache = DualCache(settings, l1=tier)
    await cache.set("a", b"1")
    assert tier.status().degraded is False

    proc.stop()
    try:
        await cache.set("b", b"2")  # Redis gone: the write still succeeds (into L2)
        assert await cache.get("b") == (b"2", "l2")
        assert await cache.get("missing") == (None, None)  # no exception, just a miss
        st = cache.status()["l1"]
        assert st.degraded is True and st.details["errors"] == 1 and st.details["last_error"]
        assert st.details["reconnect_in_s"] == pytest.approx(0.5)
        # Inside the backoff window Redis is not called at all.
        await cache.get("missing-2")
        assert tier.errors == 1
        # After the window one probe fails and the backoff doubles.
        clock.now += 0.6
        await cache.get("missing-3")
        assert tier.errors == 2 and tier.status().details["backoff_s"] == 1.0
    finally:
        proc.start()

    clock.now += 0.5  # still inside the 1 s backoff: not yet retried
    await cache.get("missing-4")
    assert tier.status().degraded is True
    clock.now += 0.6
    await cache.set("c", b"3")  # the probe succeeds: recovered
    st = cache.status()["l1"]
    assert st.degraded is False and st.details["errors"] == 2
    other = DualCache(settings)
    assert await other.get("c") == (b"3", "l1")
    await cache.aclose()
    await other.aclose()


@pytest.mark.anyio
async def test_closed_port_fails_fast_and_never_raises(make_settings) -> None:
    import time

    port = free_port()
    cache = DualCache(make_settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=0.2))
    t0 = time.perf_counter()
    await cache.set("k", b"v")
    assert await cache.get("k") == (b"v", "l2")
    assert await cache.get("other") == (None, None)
    assert time.perf_counter() - t0 < 2.0
    st = cache.status()["l1"]
    assert st.degraded is True and st.details["errors"] == 1


def test_backoff_caps_at_30_seconds() -> None:
    import asyncio

    clock = FakeClock()
    tier = RedisTier("redis://127.0.0.1:1/0", timeout_s=0.2, clock=clock)

    async def run() -> list[float]:
        seen = []
        for _ in range(10):
            await tier.get("k")
            seen.append(tier.status().details["backoff_s"])
            clock.now += 100
        return seen

    seen = asyncio.run(run())
    assert seen[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert seen[-1] == 30.0
