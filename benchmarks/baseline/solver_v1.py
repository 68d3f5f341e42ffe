# BASELINE, not used by mugpos: mugpos/rules/solver.py as of commit 56967bc (box-based, before
# the table-plane rewrite), kept verbatim so benchmarks/bench_solver.py can time it side by side.
# ruff: noqa
"""Where each mug that breaks a rule should go: the least move that satisfies every rule it can.

For one mug at a time (scene order, earlier moves included), candidate positions are the box
translated so an edge meets a constraint boundary (gap thresholds around every object, edge
distances, halves and thirds, alignment lines) or a grid point, all inside the mug's surface. Each
candidate is judged with the evaluator's own predicates: it must overlap no other object (surfaces
excepted) and stay on the surface; among those, the fewest broken rules by severity weight wins, then
the shortest move, then a fixed order, so the answer is deterministic. The winner is pulled back
toward the start along each axis while nothing gets worse.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Any

from evaluator_v1 import Layout, check, involves, measure  # the baseline pair, side by side
from mugpos.rules.model import SEVERITY_WEIGHT, Rule
from mugpos.rules.verdicts import Conflict, Move, Suggestion, Suggestions
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scale, Scene

GRID = 32  # grid points per surface side
MAX_CANDIDATES = 4000  # nearest axis-boundary combinations judged per mug
NUDGE = 1e-3  # px beyond a boundary so a candidate lands on the satisfied side


def _movable_rules(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.enabled and r.checkable and r.relation != "count"]


def _broken(rules: list[Rule], lay: Layout, mug_id: str) -> list[Rule]:
    out = []
    for r in rules:
        ms, reason = measure(r, lay, only=mug_id)
        if reason is None and any(not m.ok for m in ms):
            out.append(r)
    return out


def _cost(rules: list[Rule], lay: Layout, mug_id: str, bound: float = math.inf) -> float:
    """Severity weight of the rules the mug breaks; stops early (returns >= bound) past `bound`."""
    total = 0.0
    for r in rules:
        ms, reason = measure(r, lay, only=mug_id)
        if reason is None and any(not m.ok for m in ms):
            total += SEVERITY_WEIGHT[r.severity]
            if total >= bound:
                return total
    return total


def _free(box: Box, lay: Layout, mug_id: str, surface: Box) -> bool:
    if box[0] < surface[0] - NUDGE or box[1] < surface[1] - NUDGE:
        return False
    if box[2] > surface[2] + NUDGE or box[3] > surface[3] + NUDGE:
        return False
    x1, y1, x2, y2 = box
    for it in lay.items:
        if it.id == mug_id or it.label in SURFACE_LABELS:
            continue
        o = it.box
        if (x2 if x2 < o[2] else o[2]) > (x1 if x1 > o[0] else o[0]) and (y2 if y2 < o[3] else o[3]) > (
            y1 if y1 > o[1] else o[1]
        ):
            return False
    return True


def _gaps_between(rules: list[Rule], lay: Layout, mug_label: str, other_label: str) -> set[float]:
    """Gap thresholds (px) of the rules that relate the mug to an object with this label."""
    out: set[float] = set()
    for r in rules:
        if r.relation not in ("min_gap", "max_gap") or not r.threshold_cm or r.target is None:
            continue
        if r.target.kind == "each_other":
            hit = r.subject.selects(mug_label) and r.subject.selects(other_label)
        else:
            hit = (r.subject.selects(mug_label) and r.target.selects(other_label)) or (
                r.target.selects(mug_label) and r.subject.selects(other_label)
            )
        if hit:
            out.add(r.threshold_cm * lay.ppc)
    return out


def _corner_points(rules: list[Rule], lay: Layout, mug_id: str, box: Box) -> list[tuple[float, float]]:
    """Nearest spots on the rounded corners of each gap zone (box-to-box gaps are Euclidean there)."""
    w, h = box[2] - box[0], box[3] - box[1]
    x0, y0 = box[0], box[1]
    pts = []
    for it in lay.items:
        if it.id == mug_id or it.label in SURFACE_LABELS:
            continue
        a1, b1, a2, b2 = it.box
        for cx, cy in ((a2, b2), (a1 - w, b2), (a2, b1 - h), (a1 - w, b1 - h)):
            d = math.hypot(x0 - cx, y0 - cy)
            if d < 1e-9:
                continue
            for g in _gaps_between(rules, lay, lay.by_id[mug_id].label, it.label):
                if g > 0:
                    k = (g + NUDGE) / d
                    pts.append((cx + (x0 - cx) * k, cy + (y0 - cy) * k))
    return pts


def _axis_candidates(
    rules: list[Rule], lay: Layout, mug_id: str, box: Box, surface: Box
) -> tuple[list[float], list[float]]:
    """Candidate x1 and y1 values for the moved box."""
    w, h = box[2] - box[0], box[3] - box[1]
    xs: set[float] = {box[0]}
    ys: set[float] = {box[1]}
    sx1, sy1, sx2, sy2 = surface
    for i in range(GRID + 1):
        xs.add(sx1 + (sx2 - sx1 - w) * i / GRID)
        ys.add(sy1 + (sy2 - sy1 - h) * i / GRID)
    others = [it for it in lay.items if it.id != mug_id and it.label not in SURFACE_LABELS]
    mug_label = lay.by_id[mug_id].label
    for it in others:
        gaps = {0.0} | _gaps_between(rules, lay, mug_label, it.label)
        for g in gaps:
            xs.update({it.box[2] + g + NUDGE, it.box[0] - g - w - NUDGE, it.box[0] + g, it.box[2] - g - w})
            ys.update({it.box[3] + g + NUDGE, it.box[1] - g - h - NUDGE, it.box[1] + g, it.box[3] - g - h})
        cx, cy = (it.box[0] + it.box[2]) / 2, (it.box[1] + it.box[3]) / 2
        # directions(): centres must differ by a quarter of the mean size
        tx = 0.25 * ((it.box[2] - it.box[0]) + w) / 2
        ty = 0.25 * ((it.box[3] - it.box[1]) + h) / 2
        xs.update({cx + tx - w / 2 + NUDGE, cx - tx - w / 2 - NUDGE, cx - w / 2})
        ys.update({cy + ty - h / 2 + NUDGE, cy - ty - h / 2 - NUDGE, cy - h / 2})
    for frame in {surface, lay.image_box}:
        fx1, fy1, fx2, fy2 = frame
        for k in (1 / 3, 1 / 2, 2 / 3):
            mx, my = fx1 + (fx2 - fx1) * k, fy1 + (fy2 - fy1) * k
            xs.update({mx - w / 2 - NUDGE, mx - w / 2 + NUDGE})
            ys.update({my - h / 2 - NUDGE, my - h / 2 + NUDGE})
    for r in rules:
        if r.relation == "edge_distance" and r.threshold_cm is not None:
            e = r.threshold_cm * lay.ppc
            xs.update({sx1 + e + NUDGE, sx2 - e - w - NUDGE})
            ys.update({sy1 + e + NUDGE, sy2 - e - h - NUDGE})
    lo_x, hi_x = sx1, sx2 - w
    lo_y, hi_y = sy1, sy2 - h
    fx = sorted({min(max(x, lo_x), hi_x) for x in xs}) if hi_x >= lo_x else [box[0]]
    fy = sorted({min(max(y, lo_y), hi_y) for y in ys}) if hi_y >= lo_y else [box[1]]
    return fx, fy


def _place(rules: list[Rule], lay: Layout, mug_id: str) -> tuple[Box, float, list[Rule]]:
    """The best box for the mug, its cost, and the rules it still breaks there."""
    item = lay.by_id[mug_id]
    start = item.box
    surface = lay.surface(mug_id).box
    w, h = start[2] - start[0], start[3] - start[1]
    xs, ys = _axis_candidates(rules, lay, mug_id, start, surface)
    extra = [
        (x, y)
        for x, y in _corner_points(rules, lay, mug_id, start)
        if surface[0] <= x and x + w <= surface[2] and surface[1] <= y and y + h <= surface[3]
    ]

    def key(p: tuple[float, float]) -> tuple[float, float, float]:
        return ((p[0] - start[0]) ** 2 + (p[1] - start[1]) ** 2, p[0], p[1])

    # the nearest boundary/grid combinations, plus the whole coarse grid for global coverage
    near = sorted(product(xs, ys), key=key)[:MAX_CANDIDATES]
    sx1, sy1, sx2, sy2 = surface
    grid = [
        (sx1 + (sx2 - sx1 - w) * i / GRID, sy1 + (sy2 - sy1 - h) * j / GRID)
        for i in range(GRID + 1)
        for j in range(GRID + 1)
    ]
    cands = sorted(set(near) | set(grid) | set(extra), key=key)
    rules = sorted(rules, key=lambda r: -SEVERITY_WEIGHT[r.severity])
    best: tuple[float, float, Box] | None = None
    for x, y in cands:
        dist = math.hypot(x - start[0], y - start[1])
        if best is not None and best[0] == 0 and dist > best[1]:
            break
        box = (x, y, x + w, y + h)
        if not _free(box, lay, mug_id, surface):
            continue
        item.box = box
        c = _cost(rules, lay, mug_id, bound=best[0] if best is not None else math.inf)
        if best is None or (c, dist) < (best[0], best[1]):
            best = (c, dist, box)
    if best is None:
        item.box = start
        return start, _cost(rules, lay, mug_id), _broken(rules, lay, mug_id)
    cost, _, box = best
    box = _pull_back(rules, lay, mug_id, start, box, cost, surface)
    item.box = box
    return box, cost, _broken(rules, lay, mug_id)


def _pull_back(
    rules: list[Rule], lay: Layout, mug_id: str, start: Box, box: Box, cost: float, surface: Box
) -> Box:
    """Shrink the move along the straight line and each axis while cost and freedom hold."""
    item = lay.by_id[mug_id]

    def ok(b: Box) -> bool:
        if not _free(b, lay, mug_id, surface):
            return False
        item.box = b
        return _cost(rules, lay, mug_id) <= cost

    dx, dy = box[0] - start[0], box[1] - start[1]
    for k in range(1, 64):  # the straight line from the start
        t = k / 64
        b = (start[0] + dx * t, start[1] + dy * t, start[2] + dx * t, start[3] + dy * t)
        if ok(b):
            box = b
            break
    for _ in range(2):
        for axis in (0, 1):
            cur = box[axis] - start[axis]
            if abs(cur) < 1e-9:
                continue
            lo, hi = 0.0, 1.0  # fraction of the current offset kept; hi is known good
            for _ in range(30):
                mid = (lo + hi) / 2
                off = cur * mid
                b = list(box)
                b[axis] = start[axis] + off
                b[axis + 2] = start[axis + 2] + off
                if ok((b[0], b[1], b[2], b[3])):
                    hi = mid
                else:
                    lo = mid
            off = cur * hi
            nb = list(box)
            nb[axis] = start[axis] + off
            nb[axis + 2] = start[axis + 2] + off
            box = (nb[0], nb[1], nb[2], nb[3])
    return _compass(ok, start, box, item)


def _compass(ok: Any, start: Box, box: Box, item: Any) -> Box:
    """Slide along constraint boundaries toward the start: 16 directions, shrinking steps."""
    w, h = box[2] - box[0], box[3] - box[1]

    def dist(b: Box) -> float:
        return math.hypot(b[0] - start[0], b[1] - start[1])

    dirs = [(math.cos(2 * math.pi * k / 16), math.sin(2 * math.pi * k / 16)) for k in range(16)]
    step = max(w, h) / 4
    best, best_d = box, dist(box)
    while step > 0.01:
        improved = False
        for ux, uy in dirs:
            x, y = best[0] + ux * step, best[1] + uy * step
            b = (x, y, x + w, y + h)
            d = dist(b)
            if d < best_d - 1e-9 and ok(b):
                best, best_d, improved = b, d, True
        if not improved:
            step /= 2
    item.box = best
    return best


def _instruction(label: str, dx_cm: float, dy_cm: float) -> str:
    noun = "mug" if label == "cup" else label

    def amount(v: float) -> str:
        a = abs(v)
        return f"{a:.0f} cm" if a >= 1.5 else f"{a:.1f} cm"

    parts = []
    if abs(dx_cm) >= 0.05:
        parts.append(f"{amount(dx_cm)} to the {'right' if dx_cm > 0 else 'left'}")
    if abs(dy_cm) >= 0.05:
        parts.append(f"{amount(dy_cm)} {'back' if dy_cm < 0 else 'forward'}")
    if not parts:
        return f"Leave the {noun} where it is"
    return f"Move the {noun} " + " and ".join(parts)


def solve(rules: list[Rule], scene: Scene, scale: Scale) -> Suggestions:
    """A suggestion for every mug that breaks a rule; conflicts for rules no spot satisfies together."""
    lay = Layout(scene, scale)
    movable = _movable_rules(rules)
    out = Suggestions()
    for rule in rules:
        if rule.enabled and rule.checkable and rule.relation == "count":
            ms, reason = check(rule, lay)
            if reason is None and any(not m.ok for m in ms):
                out.conflicts.append(
                    Conflict(
                        rules=[rule.text or rule.interpretation],
                        message=f"{rule.interpretation}: moving objects cannot fix a count; remove some",
                    )
                )
    for mug in scene.mugs:
        mug_id = mug.id or ""
        mine = [r for r in movable if involves(r, mug.label)]
        if not mine or not _broken(mine, lay, mug_id):
            continue
        start = lay.by_id[mug_id].box
        box, _cost_left, still = _place(mine, lay, mug_id)
        dx, dy = box[0] - start[0], box[1] - start[1]
        dx_cm, dy_cm = round(dx / lay.ppc, 2), round(dy / lay.ppc, 2)
        name = lambda r: r.text or r.interpretation  # noqa: E731
        out.suggestions.append(
            Suggestion(
                object_id=mug_id,
                from_box=start,
                to_box=box,
                move=Move(dx_px=round(dx, 2), dy_px=round(dy, 2), dx_cm=dx_cm, dy_cm=dy_cm),
                instruction=_instruction(mug.label, dx_cm, dy_cm),
                satisfies=[name(r) for r in mine if r not in still],
                still_violated=[name(r) for r in still],
            )
        )
        if still:
            out.conflicts.append(_conflict(mine, lay, mug_id, still, box))
    return out


def _conflict(rules: list[Rule], lay: Layout, mug_id: str, still: list[Rule], box: Box) -> Conflict:
    """Name the rules that block each still-broken one: what the best spot for it alone breaks."""
    item = lay.by_id[mug_id]
    involved: list[Rule] = list(still)
    alone_impossible: list[Rule] = []
    for r in still:
        item.box = box
        _, sub_cost, _ = _place([r], lay, mug_id)
        if sub_cost > 0:
            alone_impossible.append(r)
        else:
            for other in _broken(rules, lay, mug_id):
                if other not in involved:
                    involved.append(other)
    item.box = box
    names = [r.text or r.interpretation for r in involved]
    if alone_impossible and len(involved) == len(alone_impossible):
        msg = f"no free spot on its surface lets {mug_id} satisfy: " + "; ".join(names)
    else:
        msg = f"no spot on its surface lets {mug_id} satisfy these rules together: " + "; ".join(names)
    return Conflict(object_id=mug_id, rules=names, message=msg)
