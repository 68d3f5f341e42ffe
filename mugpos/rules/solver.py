"""Where each mug that breaks a rule should go, on the table plane: the least move that keeps the
whole mug on the table and clear of everything else and satisfies every rule it can.

For one mug at a time (scene order; each sees the earlier moves), candidate spots for its footprint
are a grid over the table's visible footprint plus every line where a rule's boundary lies (the
relation modules say where) and where the footprint would touch another one. Every candidate is
judged at once with numpy on the best-fit footprints: it must lie on the table (a margin inside the
edges the photo shows) and clear of every other footprint; among the rest the fewest broken rules by
severity weight wins, then the shortest move, then a fixed order. Then the moved desk is checked
the way a photo is (the evaluator, with the plane's ranges): `satisfies` keeps only the rules that
check confirms, `unconfirmed` holds those the best estimate passes by less than the range (or that
need an edge the photo cuts), so a move never claims more than a re-check would say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mugpos.rules import relations
from mugpos.rules.evaluator import Layout, check, involves
from mugpos.rules.instructions import instruction
from mugpos.rules.model import SEVERITY_WEIGHT, Rule
from mugpos.rules.placement import (
    CLEAR_CM,
    EDGE_MARGIN_CM,
    A,
    B,
    Ctx,
    inside_support,
    to_pixels,
    zone_lines,
)
from mugpos.rules.verdicts import Conflict, Guide, Measurement, Move, Suggestion, Suggestions
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Scale, Scene, TableSurface

if TYPE_CHECKING:
    from mugpos.scene.measure import Desk

GRID = 30  # grid steps across the table, each way
NEAREST = 1500  # boundary-crossing candidates judged per mug, nearest to the start first


def _movable(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.enabled and r.checkable and r.relation != "count"]


def _axis(values: list[float], lo: float, hi: float, start: float) -> A:
    return np.unique(np.clip(np.array([v for v in values if math.isfinite(v)] + [start]), lo, hi))


def _candidates(rules: list[Rule], ctx: Ctx, others: list[str]) -> tuple[A, A]:
    R = ctx.region
    lo_x, hi_x = R[0], R[2] - ctx.w
    lo_y, hi_y = R[1], R[3] - ctx.d
    xs = list(np.linspace(lo_x + EDGE_MARGIN_CM, hi_x - EDGE_MARGIN_CM, GRID + 1)) if hi_x > lo_x else []
    ys = list(np.linspace(lo_y + EDGE_MARGIN_CM, hi_y - EDGE_MARGIN_CM, GRID + 1)) if hi_y > lo_y else []
    pts: list[tuple[float, float]] = []
    for r in rules:
        mod = relations.BY_KIND[r.relation]
        lx, ly = mod.lines(r, ctx)
        xs += lx
        ys += ly
        if hasattr(mod, "points"):
            pts += mod.points(r, ctx)
    if others:
        zx, zy = zone_lines(ctx.stack(others), CLEAR_CM + 1e-3, ctx.w, ctx.d)
        xs += zx
        ys += zy
    ax = _axis(xs, lo_x, max(hi_x, lo_x), ctx.start[0])
    ay = _axis(ys, lo_y, max(hi_y, lo_y), ctx.start[1])
    X, Y = np.meshgrid(ax, ay, indexing="ij")
    X, Y = X.ravel(), Y.ravel()
    if len(X) > NEAREST:  # the boundary crossings nearest the start, and the grid for coverage
        d = (X - ctx.start[0]) ** 2 + (Y - ctx.start[1]) ** 2
        keep = np.argpartition(d, NEAREST)[:NEAREST]
        gx, gy = np.meshgrid(
            np.linspace(lo_x, max(hi_x, lo_x), GRID + 1),
            np.linspace(lo_y, max(hi_y, lo_y), GRID + 1),
            indexing="ij",
        )
        X, Y = np.concatenate([X[keep], gx.ravel()]), np.concatenate([Y[keep], gy.ravel()])
    if pts:
        px, py = np.array(pts).T
        return np.concatenate([X, px]), np.concatenate([Y, py])
    return X, Y


def _clear(ctx: Ctx, others: list[str], X: A, Y: A) -> B:
    """No other footprint within CLEAR_CM (its rectangle grown by it: a little strict at corners)."""
    if not others:
        return np.ones(X.shape, bool)
    t, c = ctx.stack(others), CLEAR_CM - 1e-6
    x, y = X[:, None], Y[:, None]
    apart = (x >= t[None, :, 2] + c) | (x + ctx.w <= t[None, :, 0] - c)
    apart |= (y >= t[None, :, 3] + c) | (y + ctx.d <= t[None, :, 1] - c)
    return apart.all(axis=1)


@dataclass
class _Plan:
    """The judged candidates for one mug: where they are, which rules each breaks, the winner."""

    X: A
    Y: A
    broken: dict[int, B]  # index into the mug's rules -> bool per candidate
    best: int


def _plan(rules: list[Rule], ctx: Ctx) -> _Plan | None:
    others = [
        i for i, lab in ctx.labels.items() if i != ctx.mug_id and i in ctx.rects and lab not in SURFACE_LABELS
    ]
    X, Y = _candidates(rules, ctx, others)
    ok = inside_support(ctx, X, Y)
    X, Y = X[ok], Y[ok]
    ok = _clear(ctx, others, X, Y)
    if not ok.any():
        return None
    X, Y = X[ok], Y[ok]
    cost = _cost(rules, ctx, X, Y)
    dist = np.hypot(X - ctx.start[0], Y - ctx.start[1])
    best = int(np.lexsort((Y, X, np.round(dist, 6), cost))[0])
    bx, by = _refine(rules, ctx, others, float(X[best]), float(Y[best]), float(cost[best]))
    X, Y = np.append(X, bx), np.append(Y, by)
    broken = {k: relations.BY_KIND[r.relation].violated(r, ctx, X, Y) for k, r in enumerate(rules)}
    return _Plan(X, Y, broken, len(X) - 1)


def _cost(rules: list[Rule], ctx: Ctx, X: A, Y: A) -> A:
    cost = np.zeros(X.shape)
    for r in rules:
        cost += SEVERITY_WEIGHT[r.severity] * relations.BY_KIND[r.relation].violated(r, ctx, X, Y)
    return cost


def _refine(
    rules: list[Rule], ctx: Ctx, others: list[str], x: float, y: float, cost: float
) -> tuple[float, float]:
    """Slide the winner toward the start while nothing gets worse: a ring of 24 directions and the
    straight line home, in shrinking steps (the winner may sit on a boundary crossing; the shortest
    move can lie along a boundary, e.g. round the corner of a keep-out zone)."""
    sx, sy = ctx.start
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    step = max(math.hypot(x - sx, y - sy) / 4, 0.1)
    for _ in range(14):
        if step < 0.1:
            break
        fr = np.linspace(0.0, 1.0, 9)[:-1]
        X = np.concatenate([x + step * np.cos(angles), sx + (x - sx) * fr])
        Y = np.concatenate([y + step * np.sin(angles), sy + (y - sy) * fr])
        d = np.hypot(X - sx, Y - sy)
        cur = math.hypot(x - sx, y - sy)
        near = d < cur - 1e-6
        X, Y, d = X[near], Y[near], d[near]
        ok = inside_support(ctx, X, Y)
        X, Y, d = X[ok], Y[ok], d[ok]
        ok = _clear(ctx, others, X, Y)
        X, Y, d = X[ok], Y[ok], d[ok]
        if len(X):
            c = _cost(rules, ctx, X, Y)
            good = c <= cost + 1e-9
            if good.any():
                i = int(np.argmin(np.where(good, d, np.inf)))
                x, y = float(X[i]), float(Y[i])
                continue
        step /= 2
    return x, y


def _improves(rules: list[Rule], ctx: Ctx, x: float, y: float) -> bool:
    """Whether moving to (x, y) lowers the severity-weighted count of broken rules."""
    X, Y = np.array([ctx.start[0], x]), np.array([ctx.start[1], y])
    before, after = _cost(rules, ctx, X, Y)
    return bool(after < before - 1e-9)


def _broken_at_start(rules: list[Rule], ctx: Ctx) -> list[Rule]:
    X0, Y0 = np.array([ctx.start[0]]), np.array([ctx.start[1]])
    return [r for r in rules if relations.BY_KIND[r.relation].violated(r, ctx, X0, Y0)[0]]


def _count_conflicts(rules: list[Rule], scene: Scene, scale: Scale, desk: Desk) -> list[Conflict]:
    out = []
    counts = [r for r in rules if r.enabled and r.checkable and r.relation == "count"]
    if counts:
        lay = Layout(scene, scale, desk)
        for rule in counts:
            ms, reason = check(rule, lay)
            if reason is None and any(not m.ok for m in ms):
                msg = f"{rule.interpretation}: moving objects cannot fix a count; remove some"
                out.append(Conflict(rules=[rule.text or rule.interpretation], message=msg))
    return out


def solve(rules: list[Rule], scene: Scene, scale: Scale, desk: Desk | None = None) -> Suggestions:
    """A suggestion for every mug that breaks a rule; conflicts for rules no spot satisfies together.

    A move that lands on a rule's boundary by the best estimate cannot be confirmed (the range
    straddles the threshold). When some do, the plan is made once more with those thresholds pushed
    past the shortfall the check measured, and kept when the check confirms more and finds nothing
    more broken: the mug goes a little further, to where a re-check says "satisfied".
    """
    if desk is None:
        from mugpos.scene.measure import measure_desk

        desk = measure_desk(scene)
    out, short = _solve_checked(rules, rules, scene, scale, desk)
    if short:  # a second push rarely confirms more (measured: bench_recheck) and costs a refit
        pushed = [_pushed(r, short.get(k, 0.0)) for k, r in enumerate(rules)]
        again, _ = _solve_checked(pushed, rules, scene, scale, desk)
        if _tally(again) > _tally(out):
            out = again
    return out


def _tally(out: Suggestions) -> tuple[int, int]:
    """How a plan fares on the check: fewer rules found broken first, then more confirmed."""
    broken = sum(len(s.still_violated) for s in out.suggestions)
    return (-broken, sum(len(s.satisfies) for s in out.suggestions))


def _pushed(rule: Rule, need: float) -> Rule:
    """The rule with its threshold moved `need` cm (+0.5) past where the check fell short; same name."""
    if need <= 0 or rule.threshold_cm is None:
        return rule
    if not (_is_low(rule) or _is_high(rule)):
        return rule
    thr = rule.threshold_cm + need + 0.5 if _is_low(rule) else max(rule.threshold_cm - need - 0.5, 0.5)
    return rule.model_copy(update={"threshold_cm": thr, "text": rule.text or rule.interpretation})


def _is_low(rule: Rule) -> bool:
    """A threshold the distance must reach (at least N cm)."""
    return rule.relation == "min_gap" or (rule.relation == "edge" and rule.bound == "min")


def _is_high(rule: Rule) -> bool:
    """A threshold the distance must stay under (within N cm)."""
    return rule.relation == "max_gap" or (rule.relation == "edge" and rule.bound == "max")


def _solve_checked(
    rules: list[Rule], judged: list[Rule], scene: Scene, scale: Scale, desk: Desk
) -> tuple[Suggestions, dict[int, float]]:
    """Plan with `rules`, check the moved desk against `judged` (the user's rules)."""
    movable = _movable(rules)
    out = Suggestions(conflicts=_count_conflicts(rules, scene, scale, desk))
    shifts: dict[str, tuple[float, float]] = {}
    rects = {i: np.array(f[0], dtype=float) for i, f in desk.feet.items() if np.all(np.isfinite(f[0]))}
    labels = {o.id or "": o.label for o in scene.objects}
    for mug in scene.mugs:
        mug_id = mug.id or ""
        mine = sorted(
            (r for r in movable if involves(r, mug.label)), key=lambda r: -SEVERITY_WEIGHT[r.severity]
        )
        if not mine:
            continue
        if mug_id not in rects:
            continue  # not on the table plane (above the horizon): nothing to place
        r0 = rects[mug_id]
        ctx = Ctx(
            desk, mug_id, rects, labels, desk.surface_of(mug_id), r0[2] - r0[0], r0[3] - r0[1], (r0[0], r0[1])
        )
        broken = _broken_at_start(mine, ctx)
        if not broken:
            continue
        plan = _plan(mine, ctx)
        if plan is None:
            names = [r.text or r.interpretation for r in broken]
            where = _table_words(ctx.surface)
            msg = f"no free spot on {where} for {mug_id}: every spot overlaps another object or leaves it"
            out.conflicts.append(Conflict(object_id=mug_id, rules=names, message=msg))
            continue
        x, y = float(plan.X[plan.best]), float(plan.Y[plan.best])
        still = [r for k, r in enumerate(mine) if plan.broken[k][plan.best]]
        if not _improves(mine, ctx, x, y):
            # The best free spot fixes nothing (often a nudge off a neighbour's footprint): a move
            # that satisfies no rule is noise a person would follow for nothing, so only the
            # conflict is reported.
            out.conflicts.append(_conflict(mug_id, mine, still, plan, ctx))
            continue
        dx, dy = x - r0[0], y - r0[1]
        rects[mug_id] = r0 + np.array([dx, dy, dx, dy])
        shifts[mug_id] = (dx, dy)
        out.suggestions.append(_suggestion(mug_id, mine, broken, still, ctx, dx, dy))
        if still:
            out.conflicts.append(_conflict(mug_id, mine, still, plan, ctx))
    return out, _recheck(judged, scale, desk, out, shifts)


def _recheck(
    rules: list[Rule], scale: Scale, desk: Desk, out: Suggestions, shifts: dict[str, tuple[float, float]]
) -> dict[int, float]:
    """Check the desk as the photo would show it after the moves, the way a new photo is checked
    (boxes at their `to_box`, the plane fitted again, the plane's ranges): a rule the plan says a
    move satisfies but that check cannot confirm moves from `satisfies` to `unconfirmed`, one it
    finds broken to `still_violated`. A given scale (top-down) is exact: footprints just slide.

    Returns, per rule index, how many cm the ranges of moved mugs fell short of the threshold.
    """
    short: dict[int, float] = {}
    if not out.suggestions:
        return short
    to_box = {s.object_id: s.to_box for s in out.suggestions}
    scene = desk.scene.model_copy(
        update={
            "objects": [
                o.model_copy(update={"box": to_box[o.id]}) if o.id in to_box else o
                for o in desk.scene.objects
            ]
        }
    )
    if desk.fit.kind == "top_down":
        feet = dict(desk.feet)
        for mug_id, (dx, dy) in shifts.items():
            feet[mug_id] = desk.feet[mug_id] + np.array([dx, dy, dx, dy])
        moved = replace(desk, scene=scene, feet=feet)
    else:
        from mugpos.scene.measure import measure_desk

        moved = measure_desk(scene)
    lay = Layout(scene, scale, moved)
    # One sentence may hold several rules ("on the right and 10 cm from the front edge").
    named: dict[str, list[int]] = {}
    for k, r in enumerate(rules):
        named.setdefault(r.text or r.interpretation, []).append(k)
    checked: dict[int, tuple[list[Measurement], str | None]] = {}
    for s in out.suggestions:  # only the rules a move claims: the evaluator's check, once per rule
        keep, unsure = [], []
        for text in s.satisfies:
            found: set[str] = set()
            for k in named[text]:
                if k not in checked:
                    checked[k] = check(rules[k], lay)
                ms, reason = checked[k]
                mine = [m for m in ms if m.object_id == s.object_id] if reason is None else []
                found |= {m.status for m in mine}
                for m in mine:
                    if m.status == "uncertain" and m.range_cm and m.required_cm is not None:
                        lo, hi = m.range_cm
                        need = (m.required_cm - lo) if _is_low(rules[k]) and lo is not None else 0.0
                        need = (hi - m.required_cm) if _is_high(rules[k]) and hi is not None else need
                        if need > 0:
                            short[k] = max(short.get(k, 0.0), min(need, 100.0))
            if "violated" in found:
                s.still_violated.append(text)
            elif "uncertain" in found:
                unsure.append(text)
            else:
                keep.append(text)
        s.satisfies, s.unconfirmed = keep, unsure
    return short


def _suggestion(
    mug_id: str, mine: list[Rule], broken: list[Rule], still: list[Rule], ctx: Ctx, dx: float, dy: float
) -> Suggestion:
    desk = ctx.desk
    obj = desk.scene.get(mug_id)
    assert obj is not None
    target = tuple(round(float(v), 2) for v in ctx.rects[mug_id])
    name = lambda r: r.text or r.interpretation  # noqa: E731
    return Suggestion(
        object_id=mug_id,
        from_box=obj.box,
        to_box=desk.box_at(mug_id, dx, dy),
        to_footprint_cm=target,  # type: ignore[arg-type]
        move=_move(desk, mug_id, dx, dy),
        instruction=instruction(ctx, target, dx, dy, mine),
        guides=_guides(broken, ctx, target),
        satisfies=[name(r) for r in mine if r not in still],
        still_violated=[name(r) for r in still],
    )


def _move(desk: Desk, mug_id: str, dx: float, dy: float) -> Move:
    obj = desk.scene.get(mug_id)
    assert obj is not None
    b = desk.box_at(mug_id, dx, dy)
    return Move(
        dx_px=round((b[0] + b[2] - obj.box[0] - obj.box[2]) / 2, 2),
        dy_px=round(b[3] - obj.box[3], 2),
        dx_cm=round(dx, 2),
        dy_cm=round(dy, 2),
    )


def _guides(broken: list[Rule], ctx: Ctx, target: tuple[float, ...]) -> list[Guide]:
    out: list[Guide] = []
    x1, y1, x2, y2 = target
    px = to_pixels(ctx, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
    if px is not None:
        out.append(Guide(kind="target", points_px=px, label="put it here"))
    for r in broken:
        for g in relations.BY_KIND[r.relation].guides(r, ctx):
            out.append(Guide.model_validate(g))
    return out


def _table_words(surface: TableSurface) -> str:
    """How a conflict names where it looked: only the part of the table in view when the frame cuts
    an edge (a spot beyond the border may exist; the photo cannot say), or the area the desk's own
    objects cover when no table was found."""
    if surface.kind == "inferred":
        return "the part of the desk in view"
    if not all(e.seen for e in surface.edges.values()):
        return "the part of the table in view"
    return "the table"


def _conflict(mug_id: str, mine: list[Rule], still: list[Rule], plan: _Plan, ctx: Ctx) -> Conflict:
    """Name what blocks each still-broken rule: what the best spot for it alone breaks."""
    involved: list[Rule] = list(still)
    impossible = []
    dist = np.hypot(plan.X - plan.X[plan.best], plan.Y - plan.Y[plan.best])
    for r in still:
        k = mine.index(r)
        free = ~plan.broken[k]
        if not free.any():
            impossible.append(r)
            continue
        j = int(np.argmin(np.where(free, dist, np.inf)))
        for o, other in enumerate(mine):
            if other not in involved and plan.broken[o][j]:
                involved.append(other)
    names = [r.text or r.interpretation for r in involved]
    if impossible and len(involved) == len(impossible):
        msg = f"no free spot on {_table_words(ctx.surface)} lets {mug_id} satisfy: " + "; ".join(names)
    else:
        msg = (
            f"no spot on {_table_words(ctx.surface)} lets {mug_id} satisfy these rules together: "
            + "; ".join(names)
        )
    return Conflict(object_id=mug_id, rules=names, message=msg)
