"""What the operator sees, as plain JSON: one `snapshot(app)` read by `/dashboard` and `/metrics`.

Everything here reads state that already exists (the status operation, the event feed, the idle
watchdog, torch's CUDA counters when torch is already loaded); nothing is computed on the analysis
path. `refresh_gauges` copies the same snapshot into the Prometheus gauges just before a scrape.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

from mugpos import telemetry
from mugpos.stores.health import ComponentHealth

if TYPE_CHECKING:
    from mugpos.operations import Mugpos
    from mugpos.telemetry import Event

LATENCY_STAGES = telemetry.STAGES


async def snapshot(app: Mugpos, *, with_recent: bool = True) -> dict[str, Any]:
    """The whole operator view: models, cache tiers, batching, latency, GPU, idle countdown."""
    status = (await app.status()).model_dump(mode="json")
    models = status.get("models", {})
    out: dict[str, Any] = {
        "version": status.get("version"),
        "now": time.time(),
        "uptime_s": round(time.time() - app.started_at, 1),
        "device": status.get("device"),
        "models": {
            "stage": models.get("stage"),
            "ready": bool(models.get("ready")),
            "load_seconds": models.get("load_seconds"),
            "error": models.get("error"),
            "detector": (models.get("detector") or {}).get("weights"),
            "embedder": (models.get("embedder") or {}).get("model"),
        },
        "cache": _cache_view(status.get("cache") or {}),
        "batching": _batching_view(status.get("batching") or {}),
        "backends": backends_up(status),
        "degraded": status.get("degraded") or [],
        "gpu": gpu_view(),
        "idle": idle_view(app),
        "latency": latency_view(telemetry.FEED.recent("analysis")),
        "calls": calls_view(),
        "watchers": telemetry.FEED.watchers,
    }
    if with_recent:
        out["recent"] = [event_view(e) for e in reversed(telemetry.FEED.recent())][:20]
    return out


def _cache_view(cache: dict[str, Any]) -> dict[str, Any]:
    view = {}
    for tier, st in cache.items():
        if not isinstance(st, dict):
            continue
        details = st.get("details") if isinstance(st.get("details"), dict) else {}
        merged = {**details, **st}
        view[tier] = {
            "tier": merged.get("tier") or merged.get("backend") or tier,
            "enabled": merged.get("enabled", True),
            "hits": merged.get("hits", 0),
            "misses": merged.get("misses", 0),
            "hit_rate": merged.get("hit_rate"),
            "bytes": merged.get("bytes"),
            "max_bytes": merged.get("max_bytes"),
            "items": merged.get("items"),
            "degraded": bool(merged.get("degraded")) or merged.get("ok") is False,
        }
    return view


def _batching_view(batching: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {"enabled": batching.get("enabled")}
    for model in ("detector", "embedder"):
        st = batching.get(model)
        if not isinstance(st, dict):
            continue
        sizes = {int(k): int(v) for k, v in (st.get("batch_sizes") or {}).items()}
        batches = sum(sizes.values())
        view[model] = {
            "queue_depth": st.get("queue_depth", 0),
            "batches": batches,
            "mean_batch": round(sum(k * v for k, v in sizes.items()) / batches, 2) if batches else None,
            "max_batch": max(sizes) if sizes else None,
            "sizes": sizes,
        }
    return view


def backends_up(status: dict[str, Any]) -> dict[str, bool]:
    """Redis and MongoDB where configured: up unless their last call failed or a fallback stands in.

    Reads the stores' typed health (`mugpos.stores.health.ComponentHealth`, dumped by `status`).
    """
    up: dict[str, bool] = {}
    entries = [*(status.get("cache") or {}).values(), *(status.get("stores") or {}).values()]
    for st in entries:
        if not isinstance(st, dict) or st.get("opened") is False:
            continue
        health = ComponentHealth.model_validate(st)
        if not health.enabled or health.configured not in ("redis", "mongodb"):
            continue
        up[health.configured] = up.get(health.configured, True) and health.up
    return up


def gpu_view() -> list[dict[str, Any]] | None:
    """CUDA memory and utilisation, only when torch is already loaded (a scrape never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        devices = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            dev: dict[str, Any] = {
                "device": f"cuda:{i}",
                "name": torch.cuda.get_device_name(i),
                "allocated": int(torch.cuda.memory_allocated(i)),
                "reserved": int(torch.cuda.memory_reserved(i)),
                "used": int(total - free),
                "total": int(total),
                "utilization": None,
            }
            with contextlib.suppress(Exception):  # needs NVML (pynvml); memory alone still helps
                dev["utilization"] = float(torch.cuda.utilization(i)) / 100.0
            devices.append(dev)
        return devices
    except Exception:
        return None


def idle_view(app: Mugpos) -> dict[str, Any] | None:
    """The idle watchdog's countdown (None where no watchdog runs: not a timed pod)."""
    wd = app.watchdog
    idle_s = getattr(wd, "idle_s", None)
    if wd is None or idle_s is None:
        return None
    idle_for = float(wd.idle_for()) if hasattr(wd, "idle_for") else 0.0
    busy = bool(getattr(wd, "in_flight", 0))
    return {
        "idle_shutdown_s": idle_s,
        "idle_for_s": round(idle_for, 1),
        "seconds_left": None if busy else round(max(0.0, idle_s - idle_for), 1),
        "busy": busy,
        "stopped": bool(getattr(wd, "stopped", False)),
        "pod_id": getattr(wd, "pod_id", None),
    }


def latency_view(events: list[Event]) -> dict[str, dict[str, float | int | None]]:
    """p50/p95/max per stage over the recent analyses (exact, unlike histogram quantiles)."""
    per_stage: dict[str, list[float]] = {s: [] for s in LATENCY_STAGES}
    for e in events:
        timings = getattr(e.data.get("result"), "timings", None)
        for stage in LATENCY_STAGES:
            ms = getattr(timings, f"{stage}_ms", 0.0) or 0.0
            if ms > 0:
                per_stage[stage].append(ms)
    return {
        stage: {"n": len(v), "p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "max": max(v) if v else None}
        for stage, v in per_stage.items()
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def calls_view() -> dict[str, dict[str, int]]:
    """Tool calls so far by tool and outcome, read back from the counter (this process)."""
    out: dict[str, dict[str, int]] = {}
    for metric in telemetry.TOOL_CALLS.collect():
        for s in metric.samples:
            if s.name.endswith("_total"):
                out.setdefault(s.labels["tool"], {})[s.labels["outcome"]] = int(s.value)
    return out


def event_view(event: Event) -> dict[str, Any]:
    """One feed event as the page shows it: summary, verdicts, moves, picture URL, timings."""
    data = event.data if isinstance(event.data, dict) else {}
    result = data.get("result")
    r = result.model_dump(mode="json") if hasattr(result, "model_dump") else {}
    view: dict[str, Any] = {
        "seq": event.seq,
        "kind": event.kind,
        "at": event.at,
        "analysis_id": r.get("analysis_id"),
        "summary": r.get("summary"),
        "verdicts": [
            {"text": v.get("text"), "status": v.get("status"), "interpretation": v.get("interpretation")}
            for v in r.get("rules") or []
        ],
        "suggestions": [
            {"object_id": s.get("object_id"), "instruction": s.get("instruction")}
            for s in r.get("suggestions") or []
        ],
        "mugs": len(r.get("mugs") or []),
        "picture": f"pictures/{event.seq}" if data.get("picture") is not None else None,
        "timings": r.get("timings"),
    }
    return view


def refresh_gauges(snap: dict[str, Any]) -> None:
    """Copy a snapshot into the gauges `/metrics` exposes (counters are recorded as things happen)."""
    t = telemetry
    t.MODELS_READY.set(1 if snap["models"]["ready"] else 0)
    for model, seconds in (snap["models"].get("load_seconds") or {}).items():
        t.MODEL_LOAD_SECONDS.labels(model=model).set(float(seconds))
    for model in ("detector", "embedder"):
        st = snap["batching"].get(model)
        t.QUEUE_DEPTH.labels(model=model).set(st["queue_depth"] if st else 0)
    for tier, st in snap["cache"].items():
        if st.get("bytes") is not None:
            t.CACHE_BYTES.labels(tier=tier).set(st["bytes"])
            t.CACHE_MAX_BYTES.labels(tier=tier).set(st.get("max_bytes") or 0)
    for backend, up in snap["backends"].items():
        t.BACKEND_UP.labels(backend=backend).set(1 if up else 0)
    for dev in snap["gpu"] or []:
        for kind in ("allocated", "reserved", "used", "total"):
            t.GPU_MEMORY_BYTES.labels(device=dev["device"], kind=kind).set(dev[kind])
        if dev.get("utilization") is not None:
            t.GPU_UTILIZATION.labels(device=dev["device"]).set(dev["utilization"])
    idle = snap["idle"]
    if idle is not None:  # busy: report the whole countdown, which restarts when the call ends
        left = idle["seconds_left"] if idle.get("seconds_left") is not None else idle["idle_shutdown_s"]
        t.IDLE_SECONDS_LEFT.labels(pod=idle.get("pod_id") or "").set(left)
