"""Per-stage latency of one analysis, and how much of it is spent outside the model calls."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from mugpos.bench.config import BenchConfig, log, median

RULES = ["keep mugs at least 10 cm from laptops", "keep mugs at least 5 cm from the table edge"]


async def stages(cfg: BenchConfig, app: Any, out: dict[str, Any]) -> None:
    """One analysis through Mugpos.analyze (rules and annotation included, storage off), median of N."""
    engine = app.engine
    path = str(next((p for p in cfg.images if p.suffix.lower() in (".jpg", ".jpeg")), cfg.images[0]))
    keys = ("decode_ms", "detect_ms", "embed_ms", "geometry_ms", "rules_ms", "annotate_ms")
    per: dict[str, list[float]] = {k: [] for k in (*keys, "serialise_ms", "total_ms", "model_ms")}
    rules = await _usable_rules(app)
    await app.analyze(path, rules=rules, store=False, use_saved_rules=False)  # warm every stage
    for _ in range(cfg.repeat):
        busy0 = _busy(engine)
        t0 = time.perf_counter()
        outcome = await app.analyze(path, rules=rules, store=False, use_saved_rules=False)
        t1 = time.perf_counter()
        outcome.result.model_dump_json()
        total = (time.perf_counter() - t0) * 1000.0
        tm = outcome.result.timings
        for k in keys:
            per[k].append(float(getattr(tm, k)))
        per["serialise_ms"].append((time.perf_counter() - t1) * 1000.0)
        per["total_ms"].append(total)
        per["model_ms"].append((_busy(engine) - busy0) * 1000.0)
        if tm.cache:
            raise RuntimeError("stage timings hit the cache; it should be off for this section")
    med = {k: median(v) for k, v in per.items()}
    shares = [1.0 - m / t for m, t in zip(per["model_ms"], per["total_ms"], strict=True) if t > 0]
    out["image"] = Path(path).name
    out["rules"] = len(rules)
    out["median_ms"] = med
    out["beyond_model_share"] = round(statistics.median(shares), 4) if shares else None
    out["beyond_model_note"] = (
        "1 - (detector + embedder calls in their worker threads, incl. Ultralytics pre/post-processing) "
        "/ the whole analysis incl. load, rules, annotation and JSON serialisation"
    )


async def _usable_rules(app: Any) -> list[str]:
    """The rules the offline parser understands (a rule it cannot read must not stop the timing)."""
    good = []
    for text in RULES:
        try:
            await app.explain_rule(text)
            good.append(text)
        except Exception as exc:  # a missing grammar must not stop the timing
            log.info("bench: rule %r not usable: %s", text, getattr(exc, "message", exc))
    return good


def _busy(engine: Any) -> float:
    b = engine.status().get("batching", {})
    return sum((b.get(k) or {}).get("busy_s", 0.0) for k in ("detector", "embedder"))
