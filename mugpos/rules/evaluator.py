"""Rules x scene -> verdicts, measured on the table plane, with ranges and an `uncertain` status.

Every distance, side and direction is measured between footprints on the table plane
(`mugpos.scene.measure.Desk`), not between boxes in the picture: a mug 25 cm behind a laptop is 25 cm
away however the photo foreshortens it. Each measurement carries the range the plane's uncertainty
allows; a rule is `uncertain` when that range straddles its threshold or when it needs a table edge
the photo does not show (cut by the frame, or no table at all). The same predicates serve the
placement solver through `Layout`, a mutable view of the scene's boxes: a box the solver moves
slides its footprint on the plane, so a suggested spot is judged exactly as a checked one is.
Each kind is measured by its relation module (`mugpos.rules.relations`); this module dispatches and
turns measurements into verdicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mugpos.rules import relations
from mugpos.rules.measuring import (  # noqa: F401  (re-exported: the solver and tests use them)
    Item,
    Layout,
    Meas,
    involves,
    region_offset,
)
from mugpos.rules.model import Rule
from mugpos.rules.verdicts import Measurement, RuleVerdict, Violation
from mugpos.scene.model import Scale, Scene

if TYPE_CHECKING:
    from mugpos.scene.measure import Desk


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


def measure(rule: Rule, lay: Layout, only: str | None = None) -> tuple[list[Meas], str | None]:
    """All measurements of a checkable rule (restricted to pairs involving `only` if given), by the
    rule's relation module. Returns (measurements, reason-if-not-applicable)."""
    subj = lay.members(rule.subject)
    if not subj:
        return [], f"no {rule.subject.describe()} in the scene"
    mod = relations.BY_KIND.get(rule.relation)
    if mod is None or not hasattr(mod, "measure"):
        return [], f"relation {rule.relation} cannot be checked"
    return mod.measure(rule, lay, subj, only)


def _message(rule: Rule, m: Measurement, lay: Layout) -> str:
    mod = relations.BY_KIND.get(rule.relation)
    return mod.message(rule, m) if mod is not None else f"{m.object_id} breaks the rule"


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
