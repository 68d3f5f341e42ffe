"""The bars the bench is held to, and the human-readable table of a run."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from typing import Any

BARS = {
    "batched16_vs_baseline": (">=", 1.4),
    "beyond_model_share": ("<", 0.15),
    "l2_hit_speedup": (">=", 100.0),
    "initialize_s": ("<", 1.0),
    "mcp_stdio_call_vs_engine": ("<=", 1.25),
    "mcp_stdio_concurrent_vs_sequential": (">=", 1.5),
    "serve_first_answer_s": ("<=", 2.0),
    "worker_first_answer_s": ("<=", 2.0),
    "rules_heldout_exact_pct": (">=", 97.0),
    "rules_silent_misreads": ("<=", 0),
    "solver_cpu_median_ms": ("<=", 50.0),
}


def bars(result: dict[str, Any]) -> dict[str, Any]:
    measured = {
        "batched16_vs_baseline": (result.get("throughput") or {}).get("batched16_vs_baseline"),
        "beyond_model_share": (result.get("stages") or {}).get("beyond_model_share"),
        "l2_hit_speedup": ((result.get("cache") or {}).get("l2") or {}).get("speedup"),
        "initialize_s": ((result.get("cold_start") or {}).get("initialize") or {}).get("median_s"),
        **_door_bars(result.get("door") or {}),
        **_rules_bars(result.get("rules") or {}),
    }
    bars = {}
    for name, (op, bar) in BARS.items():
        v = measured[name]
        ok = None if v is None else {">=": v >= bar, "<=": v <= bar, "<": v < bar}[op]
        bars[name] = {"value": v, "bar": f"{op} {bar}", "pass": ok}
    return bars


def _rules_bars(r: dict[str, Any]) -> dict[str, Any]:
    c, s = r.get("corpus") or {}, r.get("solver") or {}
    return {
        "rules_heldout_exact_pct": (c.get("heldout") or {}).get("exact_pct"),
        "rules_silent_misreads": c.get("silent_misreads"),
        "solver_cpu_median_ms": s.get("cpu_median_ms"),
    }


def _door_bars(door: dict[str, Any]) -> dict[str, Any]:
    stdio = door.get("stdio") or {}
    cold = door.get("cold_start") or {}
    return {
        "mcp_stdio_call_vs_engine": stdio.get("call_vs_engine_analyze"),
        "mcp_stdio_concurrent_vs_sequential": stdio.get("concurrent_vs_sequential"),
        "serve_first_answer_s": (cold.get("serve_stdio") or {}).get("first_answer_s"),
        "worker_first_answer_s": (cold.get("runpod_worker") or {}).get("first_answer_s"),
    }


def peak_rss_mb(who: int) -> float:
    """Peak resident memory of this process (or its children) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: KiB


def print_table(result: dict[str, Any], file: Any = None) -> None:
    """The human-readable report of a `run_bench` result."""
    f = file or sys.stdout
    w: Callable[[str], None] = lambda s="": print(s, file=f)  # noqa: E731
    c = result.get("config", {})
    w(
        f"mugpos bench  detector={c.get('detector')}  clip={c.get('clip_model')}  device={c.get('device')}"
        f"  threads={c.get('threads')}  torch={c.get('torch')}"
    )
    w(f"images: {c.get('images')} from {c.get('image_source')}  repeat={c.get('repeat')}")
    if c.get("cuda"):
        w(f"gpu: {c['cuda']}")
    load = result.get("load", {})
    if load:
        w(f"models ready: {load.get('models_ready_s', load.get('detector_s'))} s  {_skip_note(load)}")
    w()
    for rows in (_throughput_rows, _stage_rows, _cache_rows):
        rows(result, w)
        w()
    _cold_rows(result, w)
    from mugpos.bench.dashboard import dashboard_table
    from mugpos.bench.door import door_table

    door_table(result.get("door") or {}, w)
    from mugpos.bench.rules import rules_table

    rules_table(result.get("rules") or {}, w)
    dashboard_table(result.get("dashboard") or {}, w)
    w(f"peak RSS of this bench process: {result.get('memory', {}).get('peak_rss_mb')} MB")
    w()
    w("bars")
    for name, b in result.get("bars", {}).items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[b["pass"]]
        w(f"  {name:<24} {b['value']!s:>10}  {b['bar']:<8} {verdict}")
    w(f"wall: {result.get('wall_s')} s")


def _throughput_rows(result: dict[str, Any], w: Callable[..., None]) -> None:
    """Detector throughput per concurrency, batcher on and off, and the baseline."""
    tp = result.get("throughput", {})
    w("detector throughput (images/s)")
    if "runs" in tp:
        w(f"  {'concurrency':>11} {'batcher on':>11} {'mean batch':>10} {'batcher off':>12}")
        by = {(r["concurrency"], r["batcher"]): r for r in tp["runs"]}
        for conc in sorted({r["concurrency"] for r in tp["runs"]}):
            on, off = by.get((conc, "on"), {}), by.get((conc, "off"), {})
            w(
                f"  {conc:>11} {on.get('images_per_s', '-'):>11} {on.get('mean_batch', '-'):>10}"
                f" {off.get('images_per_s', '-'):>12}"
            )
        b = tp["baseline"]
        w(f"  baseline (plain Ultralytics predict, one by one): {b['images_per_s']} {b['before_and_after']}")
        w(
            f"  batched@16 / baseline: {tp.get('batched16_vs_baseline')}x   on/off@16: {tp.get('batched16_vs_off16')}x"
        )
    else:
        w(f"  {_skip_note(tp)}")


def _stage_rows(result: dict[str, Any], w: Callable[..., None]) -> None:
    """The per-stage medians of one analysis."""
    st = result.get("stages", {})
    w("one analysis, median ms")
    if "median_ms" in st:
        med = st["median_ms"]
        order = (
            "decode_ms",
            "detect_ms",
            "embed_ms",
            "geometry_ms",
            "rules_ms",
            "annotate_ms",
            "serialise_ms",
        )
        w("  " + "  ".join(f"{k[:-3]}={med[k]}" for k in order))
        w(
            f"  total={med['total_ms']}  model calls={med['model_ms']}  image={st.get('image')} rules={st.get('rules')}"
        )
        w(f"  share beyond the model calls: {100 * st['beyond_model_share']:.1f} %")
    else:
        w(f"  {_skip_note(st)}")


def _cache_rows(result: dict[str, Any], w: Callable[..., None]) -> None:
    """Miss and hit latency per cache tier."""
    ca = result.get("cache", {})
    w("cache (engine.analyze), median ms")
    for tier in ("l2", "l1"):
        t = ca.get(tier)
        if t is None:
            continue
        if "hit_ms" in t:
            w(
                f"  {tier}: miss={t['miss_ms']}  hit={t['hit_ms']}  speedup={t['speedup']}x  ({t['answered_by']})"
            )
        else:
            w(f"  {tier}: {_skip_note(t)}")
    if not ca or ("l2" not in ca and "l1" not in ca):
        w(f"  {_skip_note(ca)}")


def _cold_rows(result: dict[str, Any], w: Callable[..., None]) -> None:
    """Process start to MCP initialize and to the first analysis."""
    cold = result.get("cold_start", {})
    w("cold start")
    if cold and "initialize" in cold:
        ini = cold["initialize"]
        w(f"  process start -> MCP initialize: {ini.get('median_s', _skip_note(ini))} s")
        fa = cold.get("first_analysis", {})
        extra = f"  error: {fa['error']}" if "error" in fa else ""
        w(
            f"  process start -> first analysis: {fa.get('seconds')} s  peak RSS {fa.get('peak_rss_mb')} MB{extra}"
        )
    else:
        w(f"  {_skip_note(cold)}")


def _skip_note(d: dict[str, Any]) -> str:
    if "skipped" in d:
        return f"skipped: {d['skipped']}"
    if "error" in d:
        return f"error: {d['error']}"
    return d.get("note", "")
