"""What every relation's measurement shares: the scene as the checks see it, and one measurement.

`Layout` is the scene's objects (boxes the solver may move, each footprint sliding on the table
plane with its box) over the measured `Desk`; `Meas` is one measured pair or object, with the best
estimate's pass/fail (`ok`) and what the plane's uncertainty allows (`status`). Each relation module
(`mugpos.rules.relations.<kind>`) measures its own kind with these; the evaluator only dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mugpos.rules.model import Rule, Selector
from mugpos.rules.verdicts import Measurement
from mugpos.scene.geometry import Surface, surface_for
from mugpos.scene.labels import SURFACE_LABELS
from mugpos.scene.model import Box, Scale, Scene

if TYPE_CHECKING:  # scipy (the plane fit) stays off the import path of the grammar
    from mugpos.scene.measure import Desk, Measured, Truth

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
        if desk is None:
            from mugpos.scene.measure import measure_desk

            desk = measure_desk(scene)
        self.base = desk
        if point_only:  # the solver judges candidates by the best estimate (`Meas.ok`) alone
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


def box_region_offset(box: Box, frame: Box, region: str) -> tuple[float, float, bool]:
    """Pixels the whole box must move across (dx) and down or up (dy) to lie inside `region` of
    `frame`, and whether it does.

    "In the right half of the image" means the whole mug, as on the table plane (DESIGN: halves
    and sides take the whole footprint): a mug straddling the midline is outside both halves.
    """
    bx1, by1, bx2, by2 = box
    x1, y1, x2, y2 = frame
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    dx = dy = 0.0
    parts = region.split("-") if region != "center" else ["center"]
    for part in parts:
        if part == "left":
            dx = max(bx2 - mx, 0.0)
        elif part == "right":
            dx = max(mx - bx1, 0.0)
        elif part == "back":
            dy = max(by2 - my, 0.0)
        elif part == "front":
            dy = max(my - by1, 0.0)
        elif part == "center":
            ax1, ax2 = x1 + (x2 - x1) / 3, x1 + 2 * (x2 - x1) / 3
            ay1, ay2 = y1 + (y2 - y1) / 3, y1 + 2 * (y2 - y1) / 3
            dx = max(ax1 - bx1, bx2 - ax2, 0.0)
            dy = max(ay1 - by1, by2 - ay2, 0.0)
    return dx, dy, dx == 0 and dy == 0


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


def center(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


@dataclass(slots=True)
class Meas:
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


def from_measured(
    m: Measured, thr: float, bound: str, object_id: str, other_id: str | None = None, note: str | None = None
) -> Meas:
    status = m.at_least(thr) if bound == "min" else m.at_most(thr)
    if m.value_cm is not None:
        ok = m.value_cm >= thr - 1e-9 if bound == "min" else m.value_cm <= thr + 1e-9
    else:
        ok = status != "violated"
    return Meas(object_id, other_id, m.value, thr, ok, status, m.range_cm, note)


def from_truth(t: Truth, negated: bool, object_id: str, other_id: str | None = None, **kw: object) -> Meas:
    status = "uncertain" if t == "uncertain" else ("satisfied" if (t == "yes") != negated else "violated")
    return Meas(object_id, other_id, ok=status != "violated", status=status, **kw)  # type: ignore[arg-type]


def fmt(m: Measurement | Meas) -> str:
    """'3.2 cm (2.9-3.6)': the best estimate and the range, for messages."""
    lo, hi = m.range_cm or (None, None)
    if m.measured_cm is None:
        return f"at least {lo} cm" if lo is not None else "not measurable"
    if lo is None and hi is None:
        return f"{m.measured_cm} cm"
    return f"{m.measured_cm} cm ({lo if lo is not None else '?'}-{hi if hi is not None else '?'})"


Found = tuple[list[Meas], str | None]
