"""Cold start: process start to the MCP `initialize` answer, and to the first finished analysis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mugpos.bench.config import BenchConfig, child_env, median


async def cold_start(cfg: BenchConfig, out: dict[str, Any]) -> None:
    env = child_env(cfg)
    runs = 3 if cfg.quick else 5
    try:
        times = [await _time_initialize(env, cfg.workdir) for _ in range(runs)]
        out["initialize"] = {"median_s": median(times), "runs_s": [round(t, 3) for t in times]}
    except Exception as exc:
        out["initialize"] = {"error": f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"}
    out["first_analysis"] = await asyncio.to_thread(_time_first_analysis, cfg, env)


async def _time_initialize(env: dict[str, str], cwd: Path) -> float:
    """Process start -> the `initialize` answer, over stdio with the MCP SDK client."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mugpos", "serve", "--transport", "stdio"], env=env, cwd=cwd
    )
    with open(os.devnull, "w") as devnull:
        t0 = time.perf_counter()
        async with (
            stdio_client(params, errlog=devnull) as (read, write),
            ClientSession(read, write) as session,
        ):
            await asyncio.wait_for(session.initialize(), 60)
            elapsed = time.perf_counter() - t0
    return elapsed


def _time_first_analysis(cfg: BenchConfig, env: dict[str, str]) -> dict[str, Any]:
    """Process start -> first finished analysis, via `python -m mugpos analyze IMAGE --json`."""
    image = str(cfg.images[0])
    cmd = [sys.executable, "-m", "mugpos", "analyze", image, "--json"]
    how = "python -m mugpos analyze IMAGE --json"
    out_path = cfg.workdir / "first_analysis.out"
    err_path = cfg.workdir / "first_analysis.err"
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=cfg.workdir)
        peak_kb = 0
        while proc.poll() is None:  # VmHWM: the child's own peak (ru_maxrss inherits the parent's)
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
    res: dict[str, Any] = {
        "how": how,
        "seconds": round(elapsed, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1) or None,
    }
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        res["error"] = f"exit {proc.returncode}: {' | '.join(tail)}"
        return res
    try:
        doc = json.loads(out_path.read_text())
        res["objects"] = len((doc.get("scene") or {}).get("objects", doc.get("objects", [])))
    except (json.JSONDecodeError, AttributeError):
        res["error"] = "stdout was not one JSON document"
    return res


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
