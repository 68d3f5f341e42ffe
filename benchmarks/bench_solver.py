"""Placement solver benchmark: random desks of 20 objects checked against 10 rules.

Run: python benchmarks/bench_solver.py [--scenes N] [--seed S]. Prints the time per scene
(evaluate + solve) and how many mugs were moved. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from mugpos.rules.evaluator import evaluate
from mugpos.rules.grammar import parse_rule
from mugpos.rules.solver import solve
from mugpos.scene.model import Scale, Scene

RULES = [
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
]
LABELS = ["laptop", "keyboard", "mouse", "cell phone", "book", "bowl", "bottle", "remote", "clock", "vase"]


def random_scene(rng: random.Random, n_objects: int = 20, n_mugs: int = 4) -> Scene:
    w, h = 1600, 1000
    objs = [{"id": "table-1", "label": "dining table", "box": [50, 50, 1550, 980]}]
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
    return Scene.model_validate({"image": {"width": w, "height": h}, "px_per_cm": 10.0, "objects": objs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rules = [parse_rule(t, max_chars=500) for t in RULES]
    scale = Scale(px_per_cm=10.0, source="given")
    times, moved, conflicts = [], 0, 0
    for _ in range(args.scenes):
        scene = random_scene(rng)
        t0 = time.perf_counter()
        evaluate(rules, scene, scale)
        out = solve(rules, scene, scale)
        times.append(time.perf_counter() - t0)
        moved += len(out.suggestions)
        conflicts += len(out.conflicts)
    print(
        f"{args.scenes} scenes x {len(scene.objects)} objects x {len(rules)} rules: "
        f"median {statistics.median(times) * 1000:.0f} ms/scene, "
        f"mean {statistics.mean(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
        f"{moved} mugs moved, {conflicts} conflicts"
    )


if __name__ == "__main__":
    main()
