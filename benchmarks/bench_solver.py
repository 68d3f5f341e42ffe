"""Placement solver benchmark: random desks of 20 objects checked against 10 rules, side by side.

Run: python benchmarks/bench_solver.py [--scenes N] [--seed S] [--json]. For each scene it times the
table-plane solver (`mugpos.rules.solver.solve`, the desk measured once beforehand as the operations
do) and the box-based solver it replaced (`benchmarks/baseline/solver_v1.py`, commit 56967bc), and
compares the length of each move both suggest for the same mug. The scenes are top-down
(`px_per_cm` given), so a box move and a plane move are in the same centimetres. Deterministic for
a given seed. Wall time and CPU time (`process_time`) are both reported: on a shared, loaded
machine the wall time mostly measures the queue for a core.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

from mugpos.bench.rules import SOLVER_RULES, random_desk
from mugpos.rules.grammar import parse_rule
from mugpos.rules.solver import solve
from mugpos.scene.measure import measure_desk
from mugpos.scene.model import Scale

sys.path.insert(0, str(Path(__file__).resolve().parent / "baseline"))
import solver_v1

# The same desks and rules as `mugpos bench --sections rules` (one definition, in the package).
RULES = list(SOLVER_RULES)
random_scene = random_desk


def run(n_scenes: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    rules = [parse_rule(t, max_chars=500) for t in RULES]
    scale = Scale(px_per_cm=10.0, source="given")
    new_t: list[float] = []
    old_t: list[float] = []
    measure_t: list[float] = []
    new_cpu: list[float] = []
    old_cpu: list[float] = []
    new_mv: list[float] = []
    old_mv: list[float] = []
    longer = better = worse = 0
    same: list[tuple[float, float]] = []
    counts = {"new_moved": 0, "old_moved": 0, "new_conflicts": 0, "old_conflicts": 0}
    for _ in range(n_scenes):
        scene = random_scene(rng)
        t0 = time.perf_counter()
        desk = measure_desk(scene)
        t1, c1 = time.perf_counter(), time.process_time()
        new = solve(rules, scene, scale, desk=desk)
        t2, c2 = time.perf_counter(), time.process_time()
        old = solver_v1.solve(rules, scene, scale)
        t3, c3 = time.perf_counter(), time.process_time()
        measure_t.append(t1 - t0)
        new_t.append(t2 - t1)
        old_t.append(t3 - t2)
        new_cpu.append(c2 - c1)
        old_cpu.append(c3 - c2)
        counts["new_moved"] += len(new.suggestions)
        counts["old_moved"] += len(old.suggestions)
        counts["new_conflicts"] += len(new.conflicts)
        counts["old_conflicts"] += len(old.conflicts)
        olds = {s.object_id: s for s in old.suggestions}
        for s in new.suggestions:
            if s.object_id in olds:
                o = olds[s.object_id]
                a, b = math.hypot(s.move.dx_cm, s.move.dy_cm), math.hypot(o.move.dx_cm, o.move.dy_cm)
                new_mv.append(a)
                old_mv.append(b)
                longer += a > b + 0.5
                if set(s.still_violated) == set(o.still_violated):
                    same.append((a, b))
                else:
                    better += len(s.still_violated) < len(o.still_violated)
                    worse += len(s.still_violated) > len(o.still_violated)

    def ms(xs: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(xs) * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}

    return {
        "scenes": n_scenes,
        "objects": len(scene.objects),
        "rules": len(rules),
        "plane_solver": ms(new_t),
        "plane_solver_cpu": ms(new_cpu),
        "measure_desk": ms(measure_t),
        "box_solver_v1": ms(old_t),
        "box_solver_v1_cpu": ms(old_cpu),
        "moves_compared": len(new_mv),
        "median_move_cm": {
            "plane": round(statistics.median(new_mv), 2) if new_mv else None,
            "box_v1": round(statistics.median(old_mv), 2) if old_mv else None,
        },
        "mean_move_cm": {
            "plane": round(statistics.mean(new_mv), 2) if new_mv else None,
            "box_v1": round(statistics.mean(old_mv), 2) if old_mv else None,
        },
        "plane_move_longer_by_0.5cm": longer,
        "same_outcome_pairs": {
            "n": len(same),
            "median_move_cm_plane": round(statistics.median(a for a, _ in same), 2) if same else None,
            "median_move_cm_box_v1": round(statistics.median(b for _, b in same), 2) if same else None,
            "plane_longer_by_0.5cm": sum(a > b + 0.5 for a, b in same),
        },
        "plane_breaks_fewer_rules": better,
        "plane_breaks_more_rules": worse,
        **counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = run(args.scenes, args.seed)
    if args.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
