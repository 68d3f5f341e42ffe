"""`mugpos bench` door section: what an analysis costs through the MCP door, beside `engine.analyze`.

Side by side in one run on one machine: the engine alone (`Engine.analyze` on an already loaded
photo, and the whole `Mugpos.analyze` operation), then a warm `mugpos serve` over stdio and over
streamable HTTP answering `analyze_image` for distinct photos (so no cache can answer), one after
another and 16 at once. Each MCP call is split into stages: door in (client -> the tool function:
request encoding, transport, the SDK's parsing and argument validation), the server's own stages
(load, decode, model, geometry, rules, picture, store, as the result's `timings` report them), result
building, and door out (the result's serialisation, transport and the client's parsing), from the
wall-clock stamps the server puts in the result's `_meta`. Cold start: process start -> first
finished analysis for `mugpos serve` (stdio) and the RunPod worker.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mugpos.bench.config import free_port

CONCURRENT = 16
SERVER_STAGES = ("load_ms", "decode_ms", "detect_ms", "geometry_ms", "rules_ms", "annotate_ms", "store_ms")


# --- photos -------------------------------------------------------------------------------------
def distinct_photos(images: list[Path], n: int, out: Path) -> list[Path]:
    """`n` JPEGs with distinct pixels (mirrored and slightly cropped variants of the given photos),
    so neither cache tier can answer any of them."""
    from PIL import Image, ImageOps

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = images[i % len(images)]
        variant = i // len(images)
        with Image.open(base) as im:
            rgb = im.convert("RGB")
        if variant % 2:
            rgb = ImageOps.mirror(rgb)
        trim = (variant // 2) * 4
        if trim:
            rgb = rgb.crop((trim, trim, rgb.width - trim, rgb.height - trim))
        p = out / f"door-{i:03d}.jpg"
        rgb.save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


# --- the engine alone ---------------------------------------------------------------------------
@asynccontextmanager
async def engine_app(settings: Any, warm: Path) -> AsyncIterator[Any]:
    """The engine in this process, warm (one analysis of `warm`, then its CPU-stage worker warmed),
    with no cache tier (every photo is new anyway)."""
    from mugpos.operations import Mugpos

    app = Mugpos(settings.model_copy(update={"cache_l2_bytes": 0, "redis_url": None}))
    try:
        app.start()
        await app.engine.wait_ready()
        await _engine_once(app, warm)  # its first answer starts the CPU-stage worker
        await _cpu_warm(app.engine.cpu.status)
        yield app
    finally:
        await app.aclose()


async def _cpu_warm(status: Any, timeout_s: float = 60.0) -> None:
    """Wait until the CPU-stage worker (started after a server's first answer) is warm, so that no
    measured call runs its stages in a thread while the worker is still starting."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cpu = status()
        if inspect.isawaitable(cpu):
            cpu = await cpu
        if not cpu or not cpu.get("processes") or cpu.get("warm"):
            return
        await asyncio.sleep(0.1)


async def _server_cpu(client: Any) -> dict[str, Any]:
    read = await client.read_resource("mugpos://status")
    return dict(json.loads(read.contents[0].text).get("cpu") or {})


async def _engine_once(app: Any, photo: Path) -> float:
    """`Engine.analyze` on a loaded photo (decoding not timed): the same work as a call's model and
    measure stages, scale estimated and plane fitted."""
    from mugpos.engine.images import load_image

    img = await load_image(_b64(photo), app.settings)
    t0 = time.perf_counter()
    await app.engine.analyze(img)
    return (time.perf_counter() - t0) * 1000


# --- servers --------------------------------------------------------------------------------------
@asynccontextmanager
async def mcp_client(transport: str, env: dict[str, str], cwd: Path) -> AsyncIterator[Any]:
    """An SDK client connected to a fresh `python -m mugpos serve` over `transport`."""
    from mcp import Client, StdioServerParameters

    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mugpos", "serve"], env=env, cwd=str(cwd)
        )
        from mcp.client.stdio import stdio_client

        with open(os.devnull, "w") as devnull:
            async with Client(stdio_client(params, errlog=devnull)) as client:
                yield client
        return
    from mcp.client.streamable_http import streamable_http_client

    port = free_port()
    args = ["-m", "mugpos", "serve", "--transport", "streamable-http", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                await asyncio.sleep(0.05)
        async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _call(client: Any, photo: Path) -> dict[str, Any]:
    """One analyze_image call, split into stages from the client's clock and the server's stamps."""
    image = _b64(photo)
    sent = time.time()
    res = await client.call_tool("analyze_image", {"image": image, "use_saved_rules": False})
    got = time.time()
    if res.is_error:
        raise RuntimeError(f"analyze_image failed: {res.content[0].text[:300]}")
    stamps = ((res.meta or {}).get("mugpos/timing")) or {}
    timings = (res.structured_content or {}).get("timings") or {}
    size = sum(len(getattr(c, "text", "") or getattr(c, "data", "")) for c in res.content)
    row = {"round_trip_ms": (got - sent) * 1000, "result_chars": size}
    row.update({k: float(timings.get(k) or 0.0) for k in SERVER_STAGES})
    row["server_total_ms"] = float(timings.get("total_ms") or 0.0)
    if stamps:
        row["door_in_ms"] = (stamps["received"] - sent) * 1000
        row["result_ms"] = float(stamps.get("result_ms", 0.0))
        row["door_out_ms"] = (got - stamps["answered"]) * 1000
    return row


async def door_side(
    transport: str, env: dict[str, str], cwd: Path, app: Any, blocks: list[list[Path]], warm: Path
) -> dict[str, Any]:
    """A warm server beside the warm in-process engine, measured interleaved so that the load of a
    shared machine, which drifts by the minute, weighs on both sides alike:

    - per call: `Engine.analyze` on one twin and `analyze_image` on the other, alternating which
      goes first (blocks 0 and 1);
    - throughput: pairs of blocks, one after another then all at once, alternating which comes
      first; the ratio is the median over the pairs."""
    async with mcp_client(transport, env, cwd) as client:
        await client.call_tool("analyze_image", {"image": _b64(warm), "use_saved_rules": False})
        await _cpu_warm(lambda: _server_cpu(client))
        rows, engine_ms = [], []
        for i, (pe, pm) in enumerate(zip(blocks[0], blocks[1], strict=True)):
            if i % 2:
                engine_ms.append(await _engine_once(app, pe))
                rows.append(await _call(client, pm))
            else:
                rows.append(await _call(client, pm))
                engine_ms.append(await _engine_once(app, pe))
        pairs = []
        for k in range(2, len(blocks) - 1, 2):
            first_seq = k % 4 == 2
            rates = {}
            for mode in ("seq", "burst") if first_seq else ("burst", "seq"):
                photos = blocks[k] if mode == "seq" else blocks[k + 1]
                t0 = time.perf_counter()
                if mode == "seq":
                    for p in photos:
                        await _call(client, p)
                else:
                    await asyncio.gather(*(_call(client, p) for p in photos))
                rates[mode] = len(photos) / (time.perf_counter() - t0)
            pairs.append(rates)
    stages = {k: _median([r[k] for r in rows if k in r]) for k in rows[0]} if rows else {}
    call, eng = stages.get("round_trip_ms"), _median(engine_ms)
    ratios = [p["burst"] / p["seq"] for p in pairs]
    return {
        "calls": len(rows),
        "median": stages,
        "engine_analyze_ms": eng,
        "call_vs_engine_analyze": round(call / eng, 2) if call and eng else None,
        "sequential_per_s": _median([p["seq"] for p in pairs]),
        "concurrent_per_s": _median([p["burst"] for p in pairs]),
        "concurrent_vs_sequential": _median(ratios),
        "concurrent_vs_sequential_runs": [round(r, 2) for r in ratios],
    }


# --- cold start -------------------------------------------------------------------------------------
async def serve_first_answer(env: dict[str, str], cwd: Path, photo: Path) -> dict[str, Any]:
    """Spawn `mugpos serve` (stdio) -> `initialize` -> the first finished analyze_image."""
    t0 = time.perf_counter()
    async with mcp_client("stdio", env, cwd) as client:
        initialized = time.perf_counter() - t0
        res = await client.call_tool("analyze_image", {"image": str(photo), "use_saved_rules": False})
        answered = time.perf_counter() - t0
    if res.is_error:
        return {"error": res.content[0].text[:300]}
    objects = sum(((res.structured_content or {}).get("object_counts") or {}).values())  # compact: no scene
    cpu = ((res.meta or {}).get("mugpos/timing") or {}).get("process_cpu_s")
    return {
        "initialize_s": round(initialized, 3),
        "first_answer_s": round(answered, 3),
        "cpu_s": cpu,  # the server's CPU seconds by then: what a machine to itself would take
        "objects": objects,
    }


def worker_first_answer(env: dict[str, str], cwd: Path, photo: Path) -> dict[str, Any]:
    """`python -m mugpos.deploy.runpod_worker --test_input JOB`: process start -> first answer, as the
    worker's own cold-start marks report it (from the process's creation time)."""
    job = {"input": {"tool": "analyze_image", "arguments": {"image": str(photo), "use_saved_rules": False}}}
    proc = subprocess.run(
        [sys.executable, "-m", "mugpos.deploy.runpod_worker", "--test_input", json.dumps(job)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    prefix = "mugpos-worker cold start summary: "
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    summary = json.loads(lines[-1].removeprefix(prefix))
    stages = summary["stages_s"]
    return {"first_answer_s": stages.get("first answer"), "cpu_s": summary.get("cpu_s"), "stages_s": stages}


# --- the section ----------------------------------------------------------------------------------
async def door_section(
    settings: Any, env: dict[str, str], images: list[Path], workdir: Path, *, quick: bool
) -> dict[str, Any]:
    """Everything above, in one run; ratios from medians measured side by side in this run.

    Photo sets of the same make-up: block k holds twins (mirrored or cropped) of the same photos in
    the same order, so every side does the same work (a busy 40-object table costs several times a
    lone coffee cup in the measure stage), and every photo is new to every cache."""
    per = -(-CONCURRENT // len(images)) * len(images)
    n_blocks = 2 + 2 * (2 if quick else 3)  # compare + (sequential, concurrent) pairs
    folder = workdir / "door-photos"
    photos = distinct_photos(images, 2 * n_blocks * per + 3, folder)
    blocks = [photos[k * per : k * per + CONCURRENT] for k in range(2 * n_blocks)]
    allowed = [d for d in env.get("MUGPOS_ALLOWED_DIRS", "").split(os.pathsep) if d] + [str(folder)]
    env = {**env, "MUGPOS_ALLOWED_DIRS": os.pathsep.join(allowed)}

    def child(name: str) -> dict[str, str]:  # each server its own store: no replay of another's work
        return {**env, "MUGPOS_DATA_DIR": str(workdir / f"door-{name}-data")}

    out: dict[str, Any] = {
        "photos": f"twins of {len(images)} photos as base64 JPEGs, every one distinct, {CONCURRENT} a block; "
        "engine and calls interleaved, sequential and concurrent blocks alternating"
    }
    async with engine_app(settings, photos[-3]) as app:
        for i, name in enumerate(("stdio", "streamable_http")):
            transport = "stdio" if name == "stdio" else "streamable-http"
            mine = blocks[i * n_blocks : (i + 1) * n_blocks]
            try:
                out[name] = await door_side(transport, child(name), workdir, app, mine, photos[-3])
            except Exception as exc:  # one transport failing must not hide the other's figures
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    out["cold_start"] = {
        "serve_stdio": await serve_first_answer(child("cold-serve"), workdir, photos[-1]),
        "runpod_worker": await asyncio.to_thread(
            worker_first_answer, child("cold-worker"), workdir, photos[-2]
        ),
    }
    return out


def door_table(door: dict[str, Any], w: Any) -> None:
    """The door section of `mugpos bench`'s table."""
    w("MCP door (analyze_image, distinct photos as base64, beside engine.analyze), median ms")
    if not door or ("stdio" not in door and "streamable_http" not in door):
        w(f"  {door.get('skipped') or door.get('error') or 'not run'}")
        return
    for name in ("stdio", "streamable_http"):
        d = door.get(name) or {}
        if "median" not in d:
            w(f"  {name}: {d.get('error', 'not run')}")
            continue
        m = d["median"]
        stages = "  ".join(
            f"{k.removesuffix('_ms')}={m.get(k)}"
            for k in ("door_in_ms", *SERVER_STAGES, "result_ms", "door_out_ms")
            if m.get(k) is not None
        )
        w(
            f"  {name}: call={m.get('round_trip_ms')}  engine.analyze={d.get('engine_analyze_ms')}"
            f"  ({d.get('call_vs_engine_analyze')}x)"
        )
        w(f"    {stages}  result={m.get('result_chars')} chars")
        w(
            f"    sequential {d.get('sequential_per_s')}/s, {CONCURRENT} at once {d.get('concurrent_per_s')}/s"
            f" ({d.get('concurrent_vs_sequential')}x; runs {d.get('concurrent_vs_sequential_runs')})"
        )
    cold = door.get("cold_start") or {}
    s, r = cold.get("serve_stdio") or {}, cold.get("runpod_worker") or {}
    w(
        f"  start -> first answer: serve stdio {s.get('first_answer_s', s.get('error'))} s"
        f" (initialize {s.get('initialize_s')} s; {s.get('cpu_s')} CPU s),"
        f" RunPod worker {r.get('first_answer_s', r.get('error'))} s ({r.get('cpu_s')} CPU s)"
    )
    w()
