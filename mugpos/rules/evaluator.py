"""Rules x scene -> verdicts, measured on the table plane, with ranges and an `uncertain` status.

Every distance, side and direction is measured between footprints on the table plane
(`mugpos.scene.measure.Desk`), not between boxes in the picture: a mug 25 cm behind a laptop is 25 cm
away however the photo foreshortens it. Each measurement carries the range the plane's uncertainty
allows; a rule is `uncertain` when that range straddles its threshold or when it needs a table edge
the photo does not show (cut by the frame, or no table at all). The same predicates serve the
placement solver through `Layout`, a mutable view of the scene's boxes: a box the solver moves
slides its footprint on the plane, so a suggested spot is judged exactly as a checked one is.
"""

from __future__ import annotations

from dataclasses import dataclass

from mugpos.rules.model import Rule, Selector
from mugpos.rules.verdicts import Measurement, RuleVerdict, Violation
from mugpos.scene.geometry import Surface, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.measure import Desk, Measured, Truth, measure_desk
from mugpos.scene.model import Box, Scale, Scene

EPS_PX = 1e-6


@dataclass
class Item:
    id: str
    label: str
    box: Box


class Layout:
    """The scene's objects with boxes that the solver may move; surfaces fixed at their original place."""

    def __init__(
        self, scene: Scene, scale: Scale, desk: Desk | None = None, *, point_only: bool = False
    ) -> None:
        self.scene = scene
        self.ppc = scale.px_per_cm
        self.base = desk if desk is not None else measure_desk(scene)
        if point_only:  # the solver judges candidates by the best estimate (`_Meas.ok`) alone
            self.base = self.base.point()
        self.items: list[Item] = [Item(o.id or "", o.label, o.box) for o in scene.objects]
        self.by_id = {it.id: it for it in self.items}
        self.tables = [it for it in self.items if it.label in SURFACE_LABELS]
        self._surfaces: dict[str, Surface] = {}
        self._members: dict[tuple[str, tuple[str, ...]], list[Item]] = {}
        self._desk_key: tuple[tuple[str, Box], ...] = ()
        self._desk = self.base
        self.image_box: Box = (0.0, 0.0, float(scene.image.width), float(scene.image.height))

    @property
    def desk(self) -> Desk:
        """The measured desk with every moved box's footprint slid along the plane."""
        moved = tuple((it.id, it.box) for it in self.items if it.box != (self.scene.get(it.id) or it).box)
        if moved != self._desk_key:
            d = self.base
            for oid, box in moved:
                d = d.moved_box(oid, box)
            self._desk, self._desk_key = d, moved
        return self._desk

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
    """A measurement without pydantic's cost, for the solver's inner loop.

    `ok`: the best estimate passes (what the solver optimises); `status`: what the range allows.
    """

    object_id: str
    other_id: str | None = None
    measured_cm: float | None = None
    required_cm: float | None = None
    ok: bool = True
    status: str = "satisfied"
    range_cm: tuple[float | None, float | None] | None = None
    note: str | None = None


def _from_measured(
    m: Measured, thr: float, bound: str, object_id: str, other_id: str | None = None, note: str | None = None
) -> _Meas:
    status = m.at_least(thr) if bound == "min" else m.at_most(thr)
    if m.value_cm is not None:
        ok = m.value_cm >= thr - 1e-9 if bound == "min" else m.value_cm <= thr + 1e-9
    else:
        ok = status != "violated"
    return _Meas(object_id, other_id, m.value, thr, ok, status, m.range_cm, note)


def _from_truth(t: Truth, negated: bool, object_id: str, other_id: str | None = None, **kw: object) -> _Meas:
    status = "uncertain" if t == "uncertain" else ("satisfied" if (t == "yes") != negated else "violated")
    return _Meas(object_id, other_id, ok=status != "violated", status=status, **kw)  # type: ignore[arg-type]


_OFF_PLANE = "not standing on the table plane (above the horizon), so not measurable on it"


def check(rule: Rule, lay: Layout, only: str | None = None) -> tuple[list[Measurement], str | None]:
    """All measurements of a checkable rule as result models, or the reason it does not apply."""
    ms, reason = measure(rule, lay, only)
    return [
        Measurement(
            object_id=m.object_id,
            other_id=m.other_id,
            measured_cm=m.measured_cm,
            range_cm=m.range_cm,
            required_cm=m.required_cm,
            ok=m.ok,
            status=m.status,  # type: ignore[arg-type]
            note=m.note,
        )
        for m in ms
    ], reason


def _gap(lay: Layout, desk: Desk, a: str, b: str, thr: float, bound: str) -> _Meas:
    if not (desk.has_footprint(a) and desk.has_footprint(b)):
        return _Meas(a, b, required_cm=thr, ok=True, status="uncertain", note=_OFF_PLANE)
    return _from_measured(desk.gap(a, b), thr, bound, a, b)


def _gaps(rule: Rule, lay: Layout, subj: list[Item], only: str | None) -> tuple[list[_Meas], str | None]:
    r, thr, desk = rule.relation, rule.threshold_cm or 0.0, lay.desk
    bound = "min" if r == "min_gap" else "max"
    out: list[_Meas] = []
    if rule.target is not None and rule.target.kind == "each_other":
        if len(subj) < 2:
            return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
        for i, a in enumerate(subj):
            for b in subj[i + 1 :]:
                if only is None or only in (a.id, b.id):
                    out.append(_gap(lay, desk, a.id, b.id, thr, bound))
        return out, None
    targets = lay.members(rule.target)
    if not [t for t in targets if any(t is not s for s in subj)]:
        return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
    for s in subj:
        cands = [t for t in targets if t is not s]
        if not cands or (only is not None and only != s.id and not any(t.id == only for t in cands)):
            continue
        if r == "min_gap":
            out.extend(_gap(lay, desk, s.id, t.id, thr, bound) for t in cands if only in (None, s.id, t.id))
            continue

        # within: the nearest target decides (by best estimate; unmeasurable ones last)
        t = min(cands, key=lambda t, a=s.id: _nearness(desk, a, t.id))
        if only is None or only in (s.id, t.id):
            out.append(_gap(lay, desk, s.id, t.id, thr, bound))
    return out, None


def _nearness(desk: Desk, a: str, b: str) -> tuple[float, str]:
    if not (desk.has_footprint(a) and desk.has_footprint(b)):
        return (float("inf"), b)
    return (desk.gap(a, b).value_cm or 0.0, b)


def measure(rule: Rule, lay: Layout, only: str | None = None) -> tuple[list[_Meas], str | None]:
    """All measurements of a checkable rule (restricted to pairs involving `only` if given).

    Returns (measurements, reason-if-not-applicable).
    """
    subj = lay.members(rule.subject)
    if not subj:
        return [], f"no {rule.subject.describe()} in the scene"
    r = rule.relation
    thr = rule.threshold_cm or 0.0
    desk = lay.desk
    mine = [s for s in subj if only is None or only == s.id]
    if r in ("min_gap", "max_gap"):
        return _gaps(rule, lay, subj, only)
    if r == "edge_distance":
        out = []
        for s in mine:
            if not desk.has_footprint(s.id):
                out.append(_Meas(s.id, required_cm=thr, status="uncertain", note=_OFF_PLANE))
                continue
            e = desk.nearest_edge(s.id, tuple(rule.edges))
            note = None if e.seen else f"the photo does not show the table's {e.edge} edge: {e.why}"
            m = _from_measured(e.measured, thr, rule.bound or "min", s.id, desk.surface_of(s.id).id, note)
            out.append(m)
        return out, None
    if r == "side":
        out = []
        for s in mine:
            if rule.frame == "image":
                off, inside = region_offset(*_center(s.box), lay.image_box, rule.region or "center")
                ok = inside != rule.negated
                st = "satisfied" if ok else "violated"
                out.append(_Meas(s.id, measured_cm=lay.cm(off), required_cm=0.0, ok=ok, status=st))
                continue
            if not desk.has_footprint(s.id):
                out.append(_Meas(s.id, status="uncertain", note=_OFF_PLANE))
                continue
            t, off = desk.in_region(s.id, rule.region or "center")
            note = None
            if t == "uncertain":
                cut = [n for n, e in desk.surface_of(s.id).edges.items() if not e.seen]
                note = (
                    f"the photo does not show the table's {', '.join(cut)} edge"
                    if cut
                    else "too close to call"
                )
            out.append(
                _from_truth(
                    t,
                    rule.negated,
                    s.id,
                    measured_cm=off.value,
                    range_cm=off.range_cm,
                    required_cm=0.0,
                    note=note,
                )
            )
        return out, None
    if r == "relative":
        targets = lay.members(rule.target)
        if not [t for t in targets if any(t is not s for s in subj)]:
            return [], f"no {rule.target.describe() if rule.target else 'target'} in the scene"
        out = []
        for s in subj:
            for t in targets:
                if t is s or (only is not None and only not in (s.id, t.id)):
                    continue
                if not (desk.has_footprint(s.id) and desk.has_footprint(t.id)):
                    out.append(_Meas(s.id, t.id, status="uncertain", note=_OFF_PLANE))
                    continue
                out.append(
                    _from_truth(desk.direction(s.id, t.id, rule.direction or ""), rule.negated, s.id, t.id)
                )
        return out, None
    if r == "on_surface":
        if not lay.tables:
            return [], "no table detected in the scene"
        out = []
        for s in mine:
            if not desk.has_footprint(s.id):
                out.append(_from_truth("no", rule.negated, s.id))
                continue
            sid = desk.surface_of(s.id).id
            out.append(_from_truth(desk.stands_on_table(s.id), rule.negated, s.id, sid))
        return out, None
    if r == "count":
        n = len(subj)
        limit = rule.count or 0
        ok = n <= limit if rule.bound == "max" else n >= limit
        out = []
        for i, s in enumerate(subj):
            extra = rule.bound == "max" and i >= limit
            good = ok or not extra if rule.bound == "max" else ok
            out.append(_Meas(s.id, ok=good, status="satisfied" if good else "violated"))
        return out, None
    if r == "align":
        on = [s for s in subj if desk.has_footprint(s.id)]
        if len(on) < 2:
            return [], f"fewer than two {rule.subject.describe(plural=True)} in the scene"
        devs = desk.deviation([s.id for s in on], "row" if rule.axis == "row" else "column")
        return [_from_measured(devs[s.id], thr, "max", s.id) for s in on if only in (None, s.id)], None
    return [], f"relation {r} cannot be checked"


def _fmt(m: Measurement) -> str:
    lo, hi = m.range_cm or (None, None)
    if m.measured_cm is None:
        return f"at least {lo} cm" if lo is not None else "not measurable"
    if lo is None and hi is None:
        return f"{m.measured_cm} cm"
    return f"{m.measured_cm} cm ({lo if lo is not None else '?'}-{hi if hi is not None else '?'})"


def _message(rule: Rule, m: Measurement, lay: Layout) -> str:
    r = rule.relation
    other = m.other_id or "its surface"
    if r == "min_gap":
        return f"{m.object_id} is {_fmt(m)} from {other}; needs at least {m.required_cm:g} cm"
    if r == "max_gap":
        return f"{m.object_id} is {_fmt(m)} from {other}; must be within {m.required_cm:g} cm"
    if r == "edge_distance":
        op = "at least" if rule.bound == "min" else "within"
        return f"{m.object_id} is {_fmt(m)} from the table edge; needs {op} {m.required_cm:g} cm"
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
        return f"{m.object_id} is {_fmt(m)} off the line; tolerance {m.required_cm:g} cm"
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
            range_cm=m.range_cm,
            required_cm=m.required_cm,
            message=_message(rule, m, lay),
        )
        for m in measurements
        if m.status == "violated"
    ]
    unsure = [m for m in measurements if m.status == "uncertain"]
    status = "violated" if violations else ("uncertain" if unsure else "satisfied")
    why = None
    if status == "uncertain":
        m = unsure[0]
        why = m.note or f"{_message(rule, m, lay)}: the measurement's range straddles the threshold"
        if len(unsure) > 1:
            why += f" (and {len(unsure) - 1} more)"
    return RuleVerdict(**base, status=status, violations=violations, measurements=measurements, reason=why)


def evaluate(rules: list[Rule], scene: Scene, scale: Scale, desk: Desk | None = None) -> list[RuleVerdict]:
    """One verdict per enabled rule, in order; disabled rules are skipped.

    `desk`: the scene's measured desk when the caller has it (measuring fits the plane again).
    """
    lay = Layout(scene, scale, desk)
    return [verdict(rule, lay) for rule in rules if rule.enabled]
