# BASELINE, not used by mugpos: mugpos/rules/evaluator.py as of commit 56967bc (box-based, before
# the table-plane rewrite), kept verbatim so benchmarks/bench_solver.py can time it side by side.
# ruff: noqa
"""Rules x scene -> verdicts, with the measured and required centimetres for every pair.

Distances are box-to-box gaps (`box_gap`) in pixels converted with the scale; edge distances use the
surface under each object (`surface_for`). The same predicates serve the placement solver through
`Layout`, a mutable view of the scene's boxes, so a suggested spot is judged exactly as a checked
one is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from mugpos.rules.model import Rule, Selector
from mugpos.rules.verdicts import Measurement, RuleVerdict, Violation
from mugpos.scene.geometry import Surface, box_gap, directions, edge_distances_px, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scale, Scene

EPS_PX = 1e-6


@dataclass
class Item:
    id: str
    label: str
    box: Box


class Layout:
    """The scene's objects with boxes that the solver may move; surfaces fixed at their original place."""

    def __init__(self, scene: Scene, scale: Scale) -> None:
        self.scene = scene
        self.ppc = scale.px_per_cm
        self.items: list[Item] = [Item(o.id or "", o.label, o.box) for o in scene.objects]
        self.by_id = {it.id: it for it in self.items}
        self.tables = [it for it in self.items if it.label in SURFACE_LABELS]
        self._surfaces: dict[str, Surface] = {}
        self._members: dict[tuple[str, tuple[str, ...]], list[Item]] = {}
        self.image_box: Box = (0.0, 0.0, float(scene.image.width), float(scene.image.height))

    def surface(self, item_id: str) -> Surface:
        """The surface an object stood on in the original scene (moves keep it there)."""
        if item_id not in self._surfaces:
            self._surfaces[item_id] = surface_for(self.scene, self.scene.get(item_id))
        return self._surfaces[item_id]

    def members(self, sel: Selector | None) -> list[Item]:
        if sel is None:
            return []
        key = (sel.kind, tuple(sel.labels))
        got = self._members.get(key)
        if got is None:
            got = self._members[key] = [it for it in self.items if sel.selects(it.label)]
        return got

    def cm(self, px: float) -> float:
        return round(px / self.ppc, 2)


def involves(rule: Rule, label: str) -> bool:
    """Whether an object with this label takes part in the rule (as subject or target)."""
    if rule.subject.selects(label):
        return True
    return rule.target is not None and rule.target.selects(label)


def region_offset(cx: float, cy: float, frame: Box, region: str) -> tuple[float, bool]:
    """Pixels the point must move to enter `region` of `frame`, and whether it is inside.

    Halves are strict (a centre exactly on the midline is in neither), the centre third inclusive.
    """
    x1, y1, x2, y2 = frame
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    dx = dy = 0.0
    inside = True
    parts = region.split("-") if region != "center" else ["center"]
    for part in parts:
        if part == "left":
            dx, inside = max(cx - mx, 0.0), inside and cx < mx
        elif part == "right":
            dx, inside = max(mx - cx, 0.0), inside and cx > mx
        elif part == "back":
            dy, inside = max(cy - my, 0.0), inside and cy < my
        elif part == "front":
            dy, inside = max(my - cy, 0.0), inside and cy > my
        elif part == "center":
            ax1, ax2 = x1 + (x2 - x1) / 3, x1 + 2 * (x2 - x1) / 3
            ay1, ay2 = y1 + (y2 - y1) / 3, y1 + 2 * (y2 - y1) / 3
            dx = max(ax1 - cx, cx - ax2, 0.0)
            dy = max(ay1 - cy, cy - ay2, 0.0)
            inside = dx == 0 and dy == 0
    return (dx * dx + dy * dy) ** 0.5, inside


def _center(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


@dataclass(slots=True)
class _Meas:
    """A measurement without pydantic's cost, for the solver's inner loop."""

    object_id: str
    other_id: str | None = None
    measured_cm: float | None = None
    required_cm: float | None = None
    ok: bool = True


def check(rule: Rule, lay: Layout, only: str | None = None) -> tuple[list[Measurement], str | None]:
    """All measurements of a checkable rule as result models, or the reason it does not apply."""
    ms, reason = measure(rule, lay, only)
    return [
        Measurement(
            object_id=m.object_id,
            other_id=m.other_id,
            measured_cm=m.measured_cm,
            required_cm=m.required_cm,
            ok=m.ok,
        )
        for m in ms
    ], reason


def measure(rule: Rule, lay: Layout, only: str | None = None) -> tuple[list[_Meas], str | None]:
    """All measurements of a checkable rule (restricted to pairs involving `only` if given).

    Returns (measurements, reason-if-not-applicable).
    """
    subj = lay.members(rule.subject)
    if not subj:
        return [], f"no {rule.subject.describe()} in the scene"
    r = rule.relation
    thr = rule.threshold_cm or 0.0
    thr_px = thr * lay.ppc
    out: list[_Meas] = []
    each_other = rule.target is not None and rule.target.kind == "each_other"

    if r in ("min_gap", "max_gap"):
        if each_other:
            if len(subj) < 2:
                return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
            for i, a in enumerate(subj):
                for b in subj[i + 1 :]:
                    if only is not None and only not in (a.id, b.id):
                        continue
                    g = box_gap(a.box, b.box)
                    ok = g >= thr_px - EPS_PX if r == "min_gap" else g <= thr_px + EPS_PX
                    out.append(
                        _Meas(object_id=a.id, other_id=b.id, measured_cm=lay.cm(g), required_cm=thr, ok=ok)
                    )
            return out, None
        targets = lay.members(rule.target)
        if not [t for t in targets if any(t is not s for s in subj)]:
            return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
        if r == "min_gap":
            for s in subj:
                if only is not None and only != s.id and not any(t.id == only for t in targets):
                    continue
                for t in targets:
                    if t is s or (only is not None and only not in (s.id, t.id)):
                        continue
                    g = box_gap(s.box, t.box)
                    out.append(
                        _Meas(
                            object_id=s.id,
                            other_id=t.id,
                            measured_cm=lay.cm(g),
                            required_cm=thr,
                            ok=g >= thr_px - EPS_PX,
                        )
                    )
        else:
            for s in subj:
                cands = [t for t in targets if t is not s]
                if not cands:
                    continue
                if only is not None and only != s.id and not any(t.id == only for t in cands):
                    continue
                g, t = min(((box_gap(s.box, t.box), t) for t in cands), key=lambda x: (x[0], x[1].id))
                if only is not None and only not in (s.id, t.id) and only != s.id:
                    # `only` is a target that is not the nearest: judge the pair it could fix
                    continue
                out.append(
                    _Meas(
                        object_id=s.id,
                        other_id=t.id,
                        measured_cm=lay.cm(g),
                        required_cm=thr,
                        ok=g <= thr_px + EPS_PX,
                    )
                )
        return out, None

    if r == "edge_distance":
        for s in subj:
            if only is not None and only != s.id:
                continue
            surf = lay.surface(s.id)
            left, right, back, front = edge_distances_px(s.box, surf.box)
            dist = {"left": left, "right": right, "back": back, "front": front}
            d = min(dist[e] for e in rule.edges)
            ok = d >= thr_px - EPS_PX if rule.bound == "min" else d <= thr_px + EPS_PX
            out.append(_Meas(object_id=s.id, other_id=surf.id, measured_cm=lay.cm(d), required_cm=thr, ok=ok))
        return out, None

    if r == "side":
        for s in subj:
            if only is not None and only != s.id:
                continue
            frame = lay.image_box if rule.frame == "image" else lay.surface(s.id).box
            off, inside = region_offset(*_center(s.box), frame, rule.region or "center")
            ok = inside != rule.negated
            out.append(_Meas(object_id=s.id, measured_cm=lay.cm(off), required_cm=0.0, ok=ok))
        return out, None

    if r == "relative":
        targets = lay.members(rule.target)
        if not [t for t in targets if any(t is not s for s in subj)]:
            return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
        for s in subj:
            for t in targets:
                if t is s or (only is not None and only not in (s.id, t.id)):
                    continue
                holds = (rule.direction or "") in directions(s.box, t.box)
                out.append(_Meas(object_id=s.id, other_id=t.id, ok=holds != rule.negated))
        return out, None

    if r == "on_surface":
        if not lay.tables:
            return [], "no table detected in the scene"
        for s in subj:
            if only is not None and only != s.id:
                continue
            fx, fy = _center(s.box)[0], s.box[3]
            on = next(
                (t for t in lay.tables if t.box[0] <= fx <= t.box[2] and t.box[1] <= fy <= t.box[3]), None
            )
            ok = (on is not None) != rule.negated
            out.append(_Meas(object_id=s.id, other_id=on.id if on else None, ok=ok))
        return out, None

    if r == "count":
        n = len(subj)
        limit = rule.count or 0
        ok = n <= limit if rule.bound == "max" else n >= limit
        for i, s in enumerate(subj):
            extra = rule.bound == "max" and i >= limit
            out.append(_Meas(object_id=s.id, ok=ok or not extra if rule.bound == "max" else ok))
        return out, None

    if r == "align":
        if len(subj) < 2:
            return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
        k = 1 if rule.axis == "row" else 0
        line = statistics.median(_center(s.box)[k] for s in subj)
        for s in subj:
            if only is not None and only != s.id:
                continue
            dev = abs(_center(s.box)[k] - line)
            out.append(
                _Meas(object_id=s.id, measured_cm=lay.cm(dev), required_cm=thr, ok=dev <= thr_px + EPS_PX)
            )
        return out, None

    return [], f"relation {r} cannot be checked"


def _message(rule: Rule, m: Measurement, lay: Layout) -> str:
    r = rule.relation
    other = m.other_id or "its surface"
    if r == "min_gap":
        return f"{m.object_id} is {m.measured_cm} cm from {other}; needs at least {m.required_cm:g} cm"
    if r == "max_gap":
        return f"{m.object_id} is {m.measured_cm} cm from {other}; must be within {m.required_cm:g} cm"
    if r == "edge_distance":
        where = "the image border" if lay.surface(m.object_id).kind == "image" else "the table edge"
        op = "at least" if rule.bound == "min" else "within"
        return f"{m.object_id} is {m.measured_cm} cm from {where}; needs {op} {m.required_cm:g} cm"
    if r == "side":
        if rule.negated:
            return f"{m.object_id} stands in the {rule.region} area it should avoid"
        return f"{m.object_id} is {m.measured_cm} cm outside the {rule.region} area"
    if r == "relative":
        d = (rule.direction or "").replace("_", " ")
        return f"{m.object_id} is {'' if rule.negated else 'not '}{d} {other}"
    if r == "on_surface":
        return f"{m.object_id} is {'on' if rule.negated else 'not on'} a table"
    if r == "count":
        return f"{m.object_id} is beyond the limit: {rule.interpretation}"
    if r == "align":
        return f"{m.object_id} is {m.measured_cm} cm off the line; tolerance {m.required_cm:g} cm"
    return f"{m.object_id} breaks the rule"


def verdict(rule: Rule, lay: Layout) -> RuleVerdict:
    base = {
        "rule_id": rule.id,
        "text": rule.text or rule.interpretation,
        "interpretation": rule.interpretation,
        "severity": rule.severity,
    }
    if not rule.checkable:
        return RuleVerdict(**base, status="not_checkable", reason=rule.reason)
    measurements, reason = check(rule, lay)
    if reason is not None:
        return RuleVerdict(**base, status="not_applicable", reason=reason)
    violations = [
        Violation(
            object_id=m.object_id,
            other_id=m.other_id,
            measured_cm=m.measured_cm,
            required_cm=m.required_cm,
            message=_message(rule, m, lay),
        )
        for m in measurements
        if not m.ok
    ]
    return RuleVerdict(
        **base,
        status="violated" if violations else "satisfied",
        violations=violations,
        measurements=measurements,
    )


def evaluate(rules: list[Rule], scene: Scene, scale: Scale) -> list[RuleVerdict]:
    """One verdict per enabled rule, in order; disabled rules are skipped."""
    lay = Layout(scene, scale)
    return [verdict(rule, lay) for rule in rules if rule.enabled]
