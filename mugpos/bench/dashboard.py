"""`mugpos bench` dashboard section: does an open dashboard cost an analysis anything?

A warm `mugpos serve --transport streamable-http` on loopback answers `analyze_image` over MCP in
alternating blocks: no dashboard open, then one `/dashboard/events` stream open (read as a browser
would, every event parsed), and so on, so drift on a shared machine falls on both sides alike. Each
call uses a fresh `px_per_cm` so no cache tier can answer it. Beside it, in this process: what the
recording itself costs per tool call (`telemetry.record_call` + `record_analysis` with no watcher),
in microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from mugpos.bench.config import free_port


@contextlib.asynccontextmanager
async def _server(env: dict[str, str], cwd: Path) -> AsyncIterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "mugpos", "serve", "--transport", "streamable-http", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mugpos serve exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mugpos serve did not listen within 90 s") from None
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def _watcher(base: str, seen: list[dict[str, Any]]) -> AsyncIterator[None]:
    """One open dashboard: the SSE stream read to the end of every message, as the page does."""
    import httpx

    ready = asyncio.Event()

    async def follow() -> None:
        async with (
            httpx.AsyncClient(timeout=None) as http,
            http.stream("GET", f"{base}/dashboard/events") as resp,
        ):
            kind = None
            async for line in resp.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if kind == "state":
                        ready.set()
                    elif kind == "event":
                        seen.append(data)

    task = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _calls(client: Any, image: str, n: int, start: int) -> list[float]:
    out = []
    for i in range(n):
        args = {"image": image, "use_saved_rules": False, "px_per_cm": 20.0 + (start + i) * 0.001}
        t0 = time.perf_counter()
        res = await client.call_tool("analyze_image", args)
        out.append((time.perf_counter() - t0) * 1000)
        if res.is_error:
            raise RuntimeError(f"analyze_image failed: {res.content[0].text[:300]}")
    return out


async def dashboard_section(
    env: dict[str, str], images: list[Path], cwd: Path, *, quick: bool
) -> dict[str, Any]:
    """Median analysis latency over MCP with and without an open dashboard, blocks alternating."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    blocks, per_block = (3, 3) if quick else (5, 4)
    image = str(next((p for p in images if p.suffix.lower() in (".jpg", ".jpeg")), images[0]))
    times: dict[str, list[float]] = {"without": [], "with": []}
    seen: list[dict[str, Any]] = []
    async with _server(env, cwd) as base, Client(streamable_http_client(f"{base}/mcp")) as client:
        await _calls(client, image, 2, 10_000)  # warm: models, every stage, the connection
        n = 0
        for _ in range(blocks):
            times["without"] += await _calls(client, image, per_block, n)
            n += per_block
            async with _watcher(base, seen):
                times["with"] += await _calls(client, image, per_block, n)
                await asyncio.sleep(0.2)  # let the last event arrive before the stream closes
            n += per_block
    med = {k: round(statistics.median(v), 2) for k, v in times.items()}
    return {
        "image": Path(image).name,
        "calls_each": len(times["with"]),
        "median_ms": med,
        "delta_ms": round(med["with"] - med["without"], 2),
        "with_vs_without": round(med["with"] / med["without"], 3) if med["without"] else None,
        "spread_ms": {k: round(statistics.pstdev(v), 2) for k, v in times.items()},
        "events_seen_by_dashboard": len(seen),
        "recording_us_per_call": recording_cost_us(),
    }


def recording_cost_us(n: int = 20_000) -> float:
    """Microseconds `record_call` + `record_analysis` add to one analyze_image call, nobody watching."""
    from mugpos import telemetry
    from mugpos.engine.timings import Timings

    class _Result:
        timings = Timings(decode_ms=3, detect_ms=40, geometry_ms=1, rules_ms=2, annotate_ms=9, total_ms=60)

    result = _Result()
    saved, telemetry.FEED = telemetry.FEED, telemetry.EventFeed()  # the probe's events are not analyses
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            telemetry.record_call("bench_probe", "ok", 0.06)
            telemetry.record_analysis(result, None)
        cost = (time.perf_counter() - t0) / n * 1e6
    finally:
        telemetry.FEED = saved
    return round(cost, 2)


def dashboard_table(d: dict[str, Any], w: Callable[[str], None]) -> None:
    w("dashboard: analyze_image over streamable HTTP, median ms")
    if "median_ms" not in d:
        w(f"  {d.get('skipped') or d.get('error') or 'not run'}")
        return
    m = d["median_ms"]
    w(f"  {'no dashboard open':>20} {'dashboard open':>16} {'delta':>8} {'ratio':>7}")
    w(f"  {m['without']:>20} {m['with']:>16} {d['delta_ms']:>8} {d['with_vs_without']:>7}")
    w(
        f"  {d['calls_each']} calls each, alternating blocks; spread (sd) {d['spread_ms']['without']} / "
        f"{d['spread_ms']['with']} ms; events the open page received: {d['events_seen_by_dashboard']}"
    )
    w(f"  recording per tool call with nobody watching: {d['recording_us_per_call']} us")
