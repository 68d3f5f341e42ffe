"""The `rules` section of `mugpos bench`: how well rules are read, and how fast mugs are placed.

Reading: the corpus of how people write rules (`tests/rules/corpus`, beside the package in a
checkout): exact matches on the tuning part and on the held-out part (scored only, never tuned
on), and silent misreads (a rule read as a different checkable rule, or read where a refusal or
`not_checkable` was expected), which must be 0. Placing: the table-plane solver on random top-down
desks of 20 objects and 10 rules (`benchmarks/bench_solver.py` has the same desks and times the
box solver it replaced beside it); wall and CPU time, since a shared machine's wall time is mostly
the wait for a core. No models are loaded.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from mugpos.bench.config import Skip

SOLVER_RULES = (
    "Keep mugs at least 6 inches away from laptops",
    "Maintain a minimum distance of 8 inches between beverages and keyboards",
    "Ensure drinks are no closer than 4 inches to the edge of the table",
    "Position mugs on the right side of the workspace",
    "Avoid placing liquids near electronic devices",
    "Keep mugs at least 5 cm apart",
    "Keep mugs within 60 cm of the keyboard",
    "Don't let mugs touch the books",
    "Keep cups away from the phone",
    "Keep beverages away from paper documents",
)
LABELS = ("laptop", "keyboard", "mouse", "cell phone", "book", "bowl", "bottle", "remote", "clock", "vase")


def random_desk(rng: random.Random, n_objects: int = 20, n_mugs: int = 4) -> Any:
    """A top-down desk (10 px/cm): a table, `n_mugs` mugs and other objects that do not overlap."""
    from mugpos.scene.model import Scene

    objs: list[dict[str, Any]] = [{"id": "table-1", "label": "dining table", "box": [50, 50, 1550, 980]}]
    placed: list[tuple[float, float, float, float]] = []

    def free(b: tuple[float, float, float, float]) -> bool:
        return all(min(b[2], o[2]) <= max(b[0], o[0]) or min(b[3], o[3]) <= max(b[1], o[1]) for o in placed)

    kinds = ["cup"] * n_mugs + [rng.choice(LABELS) for _ in range(n_objects - 1 - n_mugs)]
    for i, label in enumerate(kinds):
        bw, bh = (80, 80) if label == "cup" else (rng.randint(60, 300), rng.randint(40, 200))
        for _ in range(200):
            x, y = rng.uniform(60, 1540 - bw), rng.uniform(60, 970 - bh)
            b = (x, y, x + bw, y + bh)
            if free(b):
                placed.append(b)
                objs.append({"id": f"{label.replace(' ', '-')}-{i}", "label": label, "box": list(b)})
                break
    return Scene.model_validate(
        {"image": {"width": 1600, "height": 1000}, "px_per_cm": 10.0, "objects": objs}
    )


def corpus_scores() -> dict[str, Any]:
    from mugpos.rules.corpus import corpus_dir, load, score

    folder = corpus_dir()
    if folder is None:
        raise Skip("tests/rules/corpus is not beside the package (run from a checkout)")
    out: dict[str, Any] = {}
    for part in ("tuning", "heldout"):
        t0 = time.perf_counter()
        s = score(load(folder / f"{part}.txt"))
        d = s.as_dict()
        d["ms_per_rule"] = round((time.perf_counter() - t0) * 1000 / max(s.total, 1), 2)
        d.pop("misses", None)
        out[part] = d
    out["silent_misreads"] = out["tuning"]["silent_misreads"] + out["heldout"]["silent_misreads"]
    return out


def solver_times(n_scenes: int, seed: int = 7) -> dict[str, Any]:
    from mugpos.rules.grammar import parse_rule
    from mugpos.rules.solver import solve
    from mugpos.scene.measure import measure_desk
    from mugpos.scene.model import Scale

    rng = random.Random(seed)
    rules = [parse_rule(t, max_chars=500) for t in SOLVER_RULES]
    scale = Scale(px_per_cm=10.0, source="given")
    wall: list[float] = []
    cpu: list[float] = []
    moved = conflicts = 0
    for _ in range(n_scenes):
        scene = random_desk(rng)
        desk = measure_desk(scene)
        t0, c0 = time.perf_counter(), time.process_time()
        out = solve(rules, scene, scale, desk=desk)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        moved += len(out.suggestions)
        conflicts += len(out.conflicts)
    return {
        "scenes": n_scenes,
        "objects": 20,
        "rules": len(rules),
        "median_ms": round(statistics.median(wall) * 1000, 1),
        "max_ms": round(max(wall) * 1000, 1),
        "cpu_median_ms": round(statistics.median(cpu) * 1000, 1),
        "mugs_moved": moved,
        "conflicts": conflicts,
    }


def rules_section(out: dict[str, Any], *, quick: bool) -> None:
    out["corpus"] = corpus_scores()
    out["solver"] = solver_times(5 if quick else 20)


def rules_table(r: dict[str, Any], w: Any) -> None:
    if not r:
        return
    if "skipped" in r or "error" in r:
        w(f"rules: {r.get('skipped') or r.get('error')}")
        return
    c = r.get("corpus") or {}
    for part in ("tuning", "heldout"):
        p = c.get(part) or {}
        w(
            f"rules corpus {part:<8} {p.get('exact')}/{p.get('cases')} exact ({p.get('exact_pct')} %), "
            f"{p.get('silent_misreads')} silent misreads, {p.get('ms_per_rule')} ms a rule"
        )
    s = r.get("solver") or {}
    w(
        f"rules solver: {s.get('objects')} objects x {s.get('rules')} rules, median {s.get('median_ms')} ms "
        f"(CPU {s.get('cpu_median_ms')} ms), max {s.get('max_ms')} ms over {s.get('scenes')} desks"
    )
