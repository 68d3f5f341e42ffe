"""Cache hit latency per tier: the in-process L2, and Redis as L1 (given, or a private redis-server)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from mugpos.bench.config import BenchConfig, elapsed_ms, free_port, median, settings_for


async def cache_tiers(cfg: BenchConfig, engine: Any, out: dict[str, Any]) -> None:
    from mugpos.engine.images import load_image
    from mugpos.stores.cache import DualCache

    settings = settings_for(cfg)
    imgs = [await load_image(str(p), settings) for p in cfg.images[: max(2, min(4, cfg.repeat))]]
    original = engine.cache
    tiers: dict[str, Any] = {}
    try:
        engine.cache = DualCache(settings_for(cfg, cache_l2_bytes=256 * 1024 * 1024))
        tiers["l2"] = await _hit_vs_miss(engine, imgs, hits=40 if not cfg.quick else 20, px=1.0)
        with _redis(cfg) as (url, note):
            if url is None:
                tiers["l1"] = {"skipped": note}
            else:
                engine.cache = DualCache(settings_for(cfg, cache_l2_bytes=0, redis_url=url))
                l1 = await _hit_vs_miss(engine, imgs, hits=40 if not cfg.quick else 20, px=2.0)
                l1["redis"] = note
                l1["status"] = engine.cache.status()["l1"].degraded
                await engine.cache.aclose()
                tiers["l1"] = l1
    finally:
        engine.cache = original
    out.update(tiers)


async def _hit_vs_miss(engine: Any, imgs: list[Any], *, hits: int, px: float) -> dict[str, Any]:
    """Misses: fresh keys (px_per_cm is part of the key). Hits: the same calls again."""
    misses, hit_times, tiers = [], [], set()
    for img in imgs:
        t0 = time.perf_counter()
        a = await engine.analyze(img, px_per_cm=px)
        misses.append(elapsed_ms(t0))
        if a.timings.cache:
            raise RuntimeError("a first call was answered from the cache")
    for i in range(hits):
        img = imgs[i % len(imgs)]
        t0 = time.perf_counter()
        a = await engine.analyze(img, px_per_cm=px)
        hit_times.append(elapsed_ms(t0))
        tiers.add(a.timings.cache)
    miss, hit = median(misses), median(hit_times)
    return {
        "miss_ms": miss,
        "hit_ms": hit,
        "speedup": round(miss / hit, 1) if hit > 0 else None,
        "answered_by": sorted(str(t) for t in tiers),
    }


@contextlib.contextmanager
def _redis(cfg: BenchConfig) -> Iterator[tuple[str | None, str]]:
    """The given Redis, or a private redis-server on a free port (stopped afterwards), or none.

    Starting a server is this command's own business (the L1 number means nothing without a real
    Redis); nothing else in the package starts processes of its own.
    """
    if cfg.redis_url:
        yield cfg.redis_url, "given by --redis-url"
        return
    exe = shutil.which("redis-server")
    if exe is None:
        yield None, "no --redis-url and no redis-server on PATH"
        return
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cfg.workdir,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", f"private redis-server on port {port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
