"""Load test: N concurrent MCP clients against `mugpos serve --transport streamable-http` on loopback.

    python benchmarks/load/run.py --clients 32 --duration 60
    python benchmarks/load/run.py --url http://127.0.0.1:8765/mcp --token "$MUGPOS_AUTH_TOKEN"

Without --url it starts the server itself (the ONNX test weights and no CLIP unless MUGPOS_* says
otherwise, rate limit off for the run since every client shares 127.0.0.1) and stops it at the end.
Each client is a real SDK client; it loops over a weighted mix of calls: analyses of new images
(unique bytes: real photos with random trailing bytes, so no cache can answer), analyses of repeat
photos (cache hits), rule checks (suggest_position with a scene), layout searches and list_rules.
It reports calls, failures, p50/p99 latency per tool, throughput and the server's RSS before, after
1,000 requests and at the end. Bounded: it stops at --duration or --max-requests, whichever first,
and only ever talks to a loopback address.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("MUGPOS_TEST_DATA") or REPO.parent / "shared" / "data")
MIX = {"analyze_new": 20, "analyze_repeat": 25, "suggest_scene": 25, "search": 15, "list_rules": 15}
RULES = ["keep mugs at least 6 inches from laptops", "keep drinks at least 5 cm from the table edge"]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    done: int = 0
    rss: list[tuple[int, float, int]] = field(default_factory=list)  # (requests, seconds, bytes)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        self.done += 1
        self.latencies[kind].append(seconds)
        if error is not None:
            self.failures[kind] += 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {error[:300]}")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server -------------------------------------------------------------------------------------


def start_server(data: Path, workdir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.setdefault("MUGPOS_DETECTOR_WEIGHTS", str(data / "models" / "yolov8n_int8.onnx"))
    env.setdefault("MUGPOS_EMBEDDER", "none")
    env.setdefault("MUGPOS_DATA_DIR", str(workdir / "data"))
    env.setdefault("MUGPOS_ALLOWED_DIRS", os.pathsep.join([str(data), str(workdir)]))
    env["MUGPOS_RATE_LIMIT_PER_MIN"] = "0"  # every client shares 127.0.0.1; the limit is tested elsewhere
    env.setdefault("YOLO_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "mugpos", "serve", "--transport", "streamable-http",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def wait_healthy(base: str, proc: subprocess.Popen[bytes] | None, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"the server exited with code {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(base + "/healthz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become healthy in time")
            await asyncio.sleep(0.2)


def rss_of(pid: int | None) -> int | None:
    if pid is None:
        return None
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


# --- the workload -----------------------------------------------------------------------------------


@dataclass
class Workload:
    photos: list[Path]
    photo_bytes: list[bytes]
    scenes: list[dict[str, Any]]
    analysis_ids: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, data: Path) -> Workload:
        photos = [*sorted((data / "coco-cups" / "images").glob("*.jpg")), data / "photos" / "coffee.png"]
        photos = [p for p in photos if p.is_file()]
        if not photos:
            raise SystemExit(f"no photos under {data} (set MUGPOS_TEST_DATA or --data)")
        scenes = [json.loads(p.read_text()) for p in sorted((data / "coco-cups" / "scenes").glob("*.json"))]
        for s in scenes:
            s.get("image", {}).pop("source", None)
        if not scenes:
            scenes = [
                {"image": {"width": 1600, "height": 1000}, "px_per_cm": 10.0,
                 "objects": [{"label": "cup", "box": [1020, 400, 1100, 480]},
                             {"label": "laptop", "box": [600, 350, 1000, 650]}]}
            ]  # fmt: skip
        return cls(photos, [p.read_bytes() for p in photos], scenes)

    def call(self, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "analyze_new":
            # A real photo plus random trailing bytes: decodes the same, hashes differently, no cache hit.
            raw = rng.choice(self.photo_bytes) + os.urandom(16)
            return kind, "analyze_image", {"image": base64.b64encode(raw).decode()}
        if kind == "analyze_repeat":
            return kind, "analyze_image", {"image": str(rng.choice(self.photos))}
        if kind == "suggest_scene":
            return kind, "suggest_position", {"scene": rng.choice(self.scenes), "rules": RULES}
        if kind == "search" and self.analysis_ids:
            return kind, "search_similar_layouts", {"analysis_id": rng.choice(self.analysis_ids), "k": 5}
        return "list_rules", "list_rules", {}


async def client_loop(
    n: int, url: str, token: str | None, work: Workload, stats: Stats, stop: asyncio.Event, budget: list[int]
) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        while not stop.is_set() and budget[0] > 0:
            budget[0] -= 1
            kind, tool, args = work.call(rng)
            t0 = time.perf_counter()
            error = None
            try:
                result = await client.call_tool(tool, args)
                if result.is_error:
                    error = " ".join(getattr(c, "text", "") for c in result.content)
                elif tool == "analyze_image" and result.structured_content:
                    aid = result.structured_content.get("analysis_id")
                    if aid and len(work.analysis_ids) < 500:
                        work.analysis_ids.append(aid)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            stats.record(kind, time.perf_counter() - t0, error)


async def sample_memory(pid: int | None, stats: Stats, stop: asyncio.Event, t_start: float) -> None:
    while not stop.is_set():
        rss = rss_of(pid)
        if rss is not None:
            stats.rss.append((stats.done, time.perf_counter() - t_start, rss))
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data)
    work = Workload.load(data)
    proc = None
    pid: int | None = None
    tmp = tempfile.TemporaryDirectory(prefix="mugpos-load-")
    try:
        if args.url:
            if not _is_loopback_url(args.url):
                raise SystemExit("refusing a non-loopback --url: this load test only targets this machine")
            url = args.url
            base = url.rsplit("/mcp", 1)[0]
            pid = args.server_pid
        else:
            port = _free_port()
            proc = start_server(data, Path(tmp.name), port, Path(tmp.name) / "server.log")
            pid = proc.pid
            base, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/mcp"
        await wait_healthy(base, proc)
        warm = Stats()
        # Warm-up (not counted): model load, one rule saved, one analysis for search to start from.
        await client_loop_once(url, args.token, work, warm)
        stats = Stats()
        stop = asyncio.Event()
        budget = [args.max_requests]
        t_start = time.perf_counter()
        rss_before = rss_of(pid)
        sampler = asyncio.create_task(sample_memory(pid, stats, stop, t_start))
        clients = [
            asyncio.create_task(client_loop(i, url, args.token, work, stats, stop, budget))
            for i in range(args.clients)
        ]
        await asyncio.wait(clients, timeout=args.duration)
        stop.set()  # each client finishes the call it is in, then leaves
        _, late = await asyncio.wait(clients, timeout=args.drain)
        for task in late:
            task.cancel()
        elapsed = time.perf_counter() - t_start
        crashed = [t.exception() for t in clients if not t.cancelled() and t.exception() is not None] + [
            TimeoutError(f"{len(late)} clients still in a call {args.drain:g} s after the end")
        ] * bool(late)
        sampler.cancel()
        rss_after = rss_of(pid)
        return report(args, stats, elapsed, rss_before, rss_after, crashed, warm)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()


async def client_loop_once(url: str, token: str | None, work: Workload, warm: Stats) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(300.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        listed = await client.call_tool("list_rules", {})
        if not listed.is_error and not (listed.structured_content or {}).get("rules"):
            await client.call_tool("add_rule", {"text": RULES[0]})
        for photo in work.photos:
            t0 = time.perf_counter()
            result = await client.call_tool("analyze_image", {"image": str(photo)})
            err = None if not result.is_error else " ".join(getattr(c, "text", "") for c in result.content)
            warm.record("warmup", time.perf_counter() - t0, err)
            if not result.is_error and result.structured_content:
                work.analysis_ids.append(result.structured_content["analysis_id"])


def report(
    args: argparse.Namespace,
    stats: Stats,
    elapsed: float,
    rss_before: int | None,
    rss_after: int | None,
    crashed: list[BaseException],
    warm: Stats,
) -> dict[str, Any]:
    per_tool = {}
    for kind, lat in sorted(stats.latencies.items()):
        per_tool[kind] = {
            "calls": len(lat),
            "failures": stats.failures.get(kind, 0),
            "p50_ms": round(_pct(lat, 0.50) * 1000, 1),
            "p99_ms": round(_pct(lat, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(lat) * 1000, 1),
        }
    all_lat = [x for lat in stats.latencies.values() for x in lat]
    mb = 1024 * 1024

    def at(requests: int) -> float | None:
        hit = next((r for n, _, r in stats.rss if n >= requests), None)
        return None if hit is None else round(hit / mb, 1)

    first = stats.rss[0][2] if stats.rss else None
    out = {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "calls": stats.done,
        "failures": sum(stats.failures.values()),
        "client_crashes": [f"{type(c).__name__}: {c}" for c in crashed][:5],
        "throughput_per_s": round(stats.done / elapsed, 1) if elapsed else None,
        "p50_ms": round(_pct(all_lat, 0.50) * 1000, 1),
        "p99_ms": round(_pct(all_lat, 0.99) * 1000, 1),
        "per_tool": per_tool,
        "warmup": {"calls": warm.done, "failures": sum(warm.failures.values()), "errors": warm.samples},
        "server_rss_mb": {
            "before": None if rss_before is None else round(rss_before / mb, 1),
            "at_100_requests": at(100),
            "at_1100_requests": at(1100),
            "after": None if rss_after is None else round(rss_after / mb, 1),
            "max": round(max(r for _, _, r in stats.rss) / mb, 1) if stats.rss else None,
            "first_sample": None if first is None else round(first / mb, 1),
        },
        "failure_samples": stats.samples,
    }
    return out


def print_report(out: dict[str, Any]) -> None:
    print(f"\n{out['clients']} clients, {out['duration_s']} s: {out['calls']} calls, "
          f"{out['failures']} failed, {out['throughput_per_s']}/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")  # fmt: skip
    print(f"{'call':<16}{'calls':>8}{'failed':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for kind, row in out["per_tool"].items():
        print(f"{kind:<16}{row['calls']:>8}{row['failures']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}")
    print(f"server RSS MB: {out['server_rss_mb']}")
    if out["failure_samples"] or out["client_crashes"]:
        print("failures:", *out["failure_samples"], *out["client_crashes"], sep="\n  ")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (after warm-up)")
    p.add_argument("--max-requests", type=int, default=200_000, help="stop after this many calls")
    p.add_argument("--drain", type=float, default=120.0, help="seconds to let in-flight calls finish")
    p.add_argument("--url", default=None, help="a running server's /mcp URL (loopback only)")
    p.add_argument("--token", default=os.environ.get("MUGPOS_AUTH_TOKEN"), help="bearer token for --url")
    p.add_argument("--server-pid", type=int, default=None, help="with --url: the server's pid, for RSS")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the shared test data folder")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 512 or not 0 < args.duration <= 3600:
        p.error("--clients must be 1..512 and --duration 0..3600 s")
    out = asyncio.run(run(args))
    print_report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 1 if out["failures"] or out["client_crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
