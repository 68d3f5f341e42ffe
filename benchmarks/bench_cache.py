"""Cache hit latency per tier: L2 (in-process LRU) and L1 (Redis), p50 and p99.

    python benchmarks/bench_cache.py [--redis-url redis://...] [--n 2000] [--size 4096] [--json]

Without --redis-url it starts its own redis-server on a free loopback port (and stops it after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from mugpos.settings import Settings
from mugpos.stores.cache import DualCache, LRUBytes, RedisTier, cache_key


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(int(q * len(s)), len(s) - 1)]


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server not found: install it or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="mugpos-bench-redis-")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    sys.exit("redis-server did not start")


async def measure(url: str, n: int, size: int) -> dict[str, object]:
    settings = Settings(_env_file=None, redis_url=url, cache_l2_bytes=max(n * size * 2, 1 << 20))  # type: ignore[call-arg]
    writer = DualCache(settings)
    keys = [cache_key("bench", str(i)) for i in range(n)]
    payload = os.urandom(size)
    for k in keys:
        await writer.set(k, payload)
    l2 = []
    for k in keys:
        t = time.perf_counter_ns()
        value, tier = await writer.get(k)
        l2.append((time.perf_counter_ns() - t) / 1e3)
        assert tier == "l2" and value == payload
    l1 = []
    for k in keys:
        # a fresh L2 each time: every read has to come from Redis, as in a second process
        reader = DualCache(settings, l2=LRUBytes(0), l1=writer.l1)
        t = time.perf_counter_ns()
        value, tier = await reader.get(k)
        l1.append((time.perf_counter_ns() - t) / 1e3)
        assert tier == "l1" and value == payload, tier
    status = writer.status()
    await writer.aclose()
    assert isinstance(writer.l1, RedisTier)
    return {
        "n": n,
        "value_bytes": size,
        "l2_us": {
            "p50": round(pct(l2, 0.5), 2),
            "p99": round(pct(l2, 0.99), 2),
            "mean": round(statistics.mean(l2), 2),
        },
        "l1_us": {
            "p50": round(pct(l1, 0.5), 2),
            "p99": round(pct(l1, 0.99), 2),
            "mean": round(statistics.mean(l1), 2),
        },
        "l1_errors": status["l1"]["errors"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-url")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument(
        "--size", type=int, default=4096, help="value size in bytes (an analysis JSON is a few KiB)"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    proc = None
    url = args.redis_url
    if url is None:
        proc, url = start_redis()
    try:
        result = asyncio.run(measure(url, args.n, args.size))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    result["redis"] = "own redis-server on loopback" if proc is not None else "given url"
    if args.json:
        print(json.dumps(result))
    else:
        print(f"cache hits, {result['n']} keys of {result['value_bytes']} bytes ({result['redis']})")
        for tier in ("l2", "l1"):
            r = result[f"{tier}_us"]
            print(f"  {tier.upper()}: p50 {r['p50']:.1f} us  p99 {r['p99']:.1f} us  mean {r['mean']:.1f} us")


if __name__ == "__main__":
    main()
