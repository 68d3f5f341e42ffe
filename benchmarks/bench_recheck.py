"""Do the suggested moves hold up? Follow them on the real photos' scenes and check again.

Run: python benchmarks/bench_recheck.py [--data ../shared/data]. On every `coco-cups` scene (human
boxes) and each rule set of `tests/rules/test_photos.py`, the solver's moves are applied (each mug's
box set to its `to_box`) and the rules evaluated afresh, plane fit and all. For every mug and rule
the solver said its move satisfies, the re-check's status is counted, and an `uncertain` one by its
reason: a range that straddles the threshold (the move lands on the boundary by the best estimate)
or a structural one (the other object is off the table plane, an edge the photo cuts).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "rules"))

from test_photos import RULE_SETS, _rules  # noqa: E402

from mugpos.rules.evaluator import evaluate  # noqa: E402
from mugpos.rules.solver import solve  # noqa: E402
from mugpos.scene.measure import measure_desk  # noqa: E402
from mugpos.scene.model import Scale, Scene  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    scale = Scale(px_per_cm=10.0, source="assumed")
    status: Counter[str] = Counter()
    why: Counter[str] = Counter()
    claims: Counter[str] = Counter()
    for path in sorted((args.data / "coco-cups" / "scenes").glob("*.json")):
        scene = Scene.model_validate(json.loads(path.read_text()))
        desk = measure_desk(scene)
        for texts in RULE_SETS.values():
            rules = _rules(texts)
            moved = {s.object_id: s for s in solve(rules, scene, scale, desk=desk).suggestions}
            if not moved:
                continue
            for s in moved.values():
                claims["satisfies"] += len(s.satisfies)
                claims["unconfirmed"] += len(s.unconfirmed)
                claims["still_violated"] += len(s.still_violated)
            objects = [
                o.model_copy(update={"box": moved[o.id].to_box}) if o.id in moved else o
                for o in scene.objects
            ]
            for verdict in evaluate(rules, scene.model_copy(update={"objects": objects}), scale):
                for m in verdict.measurements:
                    if m.object_id in moved and verdict.text in moved[m.object_id].satisfies:
                        status[m.status] += 1
                        if m.status == "uncertain":
                            note = m.note or ""
                            margin = not note or note == "too close to call"
                            why[
                                "range straddles the threshold" if margin else "structural: " + note[:70]
                            ] += 1
    total = sum(status.values())
    print(
        "what the moves claim, per rule and mug: " + ", ".join(f"{k} {v}" for k, v in sorted(claims.items()))
    )
    print(f"rule-mug pairs the solver said its moves satisfy: {total}")
    for s in ("satisfied", "uncertain", "violated"):
        print(f"  re-check {s:<10} {status[s]:>4}  ({status[s] / max(total, 1):.0%})")
    print("uncertain, by reason:")
    for reason, n in why.most_common(10):
        print(f"  {n:>4}  {reason}")


if __name__ == "__main__":
    main()
