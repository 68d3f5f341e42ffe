"""The rule model: what a plain-language rule means, in a form code can check and a person can confirm.

A rule relates a *subject* (what is placed: usually mugs or drinks) to a *target* (other objects, the
surface, its edge, the image, or "each other") through one relation kind, with a threshold in cm.
Rules about things no detector sees are kept, understood, and marked `checkable=False` with a reason.
The JSON schema (`Rule.model_json_schema()`) is what an assistant fills in when the grammar cannot
read its text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mugpos.rules.verdicts import Severity
from mugpos.scene.labels import COCO_CLASSES, SURFACE_LABELS

SelectorKind = Literal["objects", "any", "surface", "edge", "image", "each_other", "unobservable"]
RelationKind = Literal[
    "min_gap",
    "max_gap",
    "edge_distance",
    "side",
    "relative",
    "on_surface",
    "count",
    "align",
    "other",
]
Region = Literal[
    "left", "right", "front", "back", "center",
    "front-left", "front-right", "back-left", "back-right",
]  # fmt: skip
Direction = Literal["left_of", "right_of", "in_front_of", "behind"]
Edge = Literal["left", "right", "front", "back"]
EDGES: tuple[Edge, ...] = ("left", "right", "front", "back")

SEVERITY_WEIGHT: dict[str, float] = {"critical": 100.0, "warning": 10.0, "info": 1.0}

# Defaults when a rule names no distance. Documented, with reasons, in docs/rules.md.
NEAR_DEFAULT_CM = 30.48  # "near", "close to", "next to": within 12 in, an easy reach at a desk
AWAY_DEFAULT_CM = 15.24  # "away from", "a buffer", "not near": 6 in, the replaced system's laptop rule
EDGE_DEFAULT_CM = 10.16  # "away from the edge": 4 in, the replaced system's edge rule
GROUP_DEFAULT_CM = 30.48  # "group/cluster together": every pair within 12 in, the replaced cluster rule
SPACING_DEFAULT_CM = 5.08  # "apart", "spaced out": 2 in, room for fingers through a handle
TOUCH_CM = 1.0  # "don't touch": boxes closer than 1 cm count as touching (boxes are not pixel-exact)
ALIGN_DEFAULT_CM = 2.0  # "line up": centres within 2 cm of the row's (column's) median line

OBJECT_LABELS: frozenset[str] = frozenset(COCO_CLASSES) - SURFACE_LABELS


class Selector(BaseModel):
    """Which objects a rule talks about.

    `objects`: detections whose COCO label is in `labels`; `any`: every object except surfaces;
    `surface` / `edge` / `image`: the supporting surface, its edge(s), the image frame;
    `each_other`: the subject against itself (spacing, grouping); `unobservable`: something the
    detector cannot see (coasters, documents, ...), named in `word`.
    """

    model_config = ConfigDict(extra="forbid")

    kind: SelectorKind = "objects"
    labels: list[str] = Field(default_factory=list, description="COCO class names (kind=objects)")
    word: str = Field("", description="the word the rule used ('drinks', 'electronics', 'coasters')")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, v: list[str]) -> list[str]:
        norm = sorted({" ".join(x.lower().replace("_", " ").split()) for x in v})
        unknown = [x for x in norm if x not in OBJECT_LABELS]
        if unknown:
            raise ValueError(
                f"unknown object label(s) {unknown}: use COCO class names such as cup, laptop, keyboard"
            )
        return norm

    @model_validator(mode="after")
    def _labels_for_objects(self) -> Selector:
        if self.kind == "objects" and not self.labels:
            raise ValueError("an 'objects' selector needs at least one COCO label")
        if self.kind != "objects" and self.labels:
            self.labels = []
        return self

    def selects(self, label: str) -> bool:
        if self.kind == "objects":
            return label in self.labels
        if self.kind == "any":
            return label not in SURFACE_LABELS
        return False

    def describe(self, plural: bool = False) -> str:
        if self.kind == "any":
            return "other objects" if plural else "other object"
        if self.kind == "each_other":
            return "each other"
        if self.kind in ("surface", "edge", "image", "unobservable"):
            return self.word or self.kind
        word = self.word or "/".join(self.labels)
        if plural:
            word = " or ".join(_plural(w) for w in word.split(" or "))
        if len(self.labels) > 1 and word not in self.labels:
            return f"{word} ({'/'.join(self.labels)})"
        return word


class Rule(BaseModel):
    """One positioning rule. Thresholds are centimetres; `interpretation` restates it in one line."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, description="assigned by the rule store")
    text: str = Field("", max_length=2000, description="the rule as the user wrote it")
    subject: Selector = Field(description="what is placed, usually mugs or drinks")
    target: Selector | None = Field(None, description="what the subject is placed relative to")
    relation: RelationKind
    threshold_cm: float | None = Field(
        None, ge=0, le=10_000, description="distance in cm (min/max gap, edge distance, alignment tolerance)"
    )
    bound: Literal["min", "max"] = Field(
        "min", description="edge_distance and count: at least (min) or at most (max)"
    )
    region: Region | None = Field(None, description="side: which half/corner/centre of the frame")
    frame: Literal["surface", "image"] = Field("surface", description="side: the surface or the image")
    direction: Direction | None = Field(None, description="relative: where the subject is vs the target")
    edges: list[Edge] = Field(default_factory=lambda: list(EDGES), description="edge_distance: which edges")
    count: int | None = Field(None, ge=0, le=1000, description="count: the limit")
    axis: Literal["row", "column"] | None = Field(None, description="align: a row (same y) or a column")
    negated: bool = Field(False, description="side/relative/on_surface: the rule forbids the position")
    severity: Severity = "warning"
    enabled: bool = True
    checkable: bool = True
    reason: str | None = Field(None, description="why it cannot be checked (checkable=False)")
    context: str | None = Field(None, description="setting the rule is meant for (office, kitchen, meeting)")
    notes: list[str] = Field(default_factory=list, description="what the check assumes")
    defaulted: bool = Field(False, description="threshold_cm is a documented default, not from the text")
    interpretation: str = Field(
        "", description="one-line restatement, e.g. 'every mug >= 15.24 cm from every laptop'"
    )

    @field_validator("threshold_cm")
    @classmethod
    def _round(cls, v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        r = self.relation
        if not self.checkable:
            if not self.reason:
                raise ValueError("a rule that is not checkable needs a reason")
        else:
            if r == "other":
                raise ValueError("relation 'other' is only for rules that are not checkable")
            if self.subject.kind not in ("objects", "any"):
                raise ValueError("the subject must be objects (labels) or 'any'")
            needs_target = {
                "min_gap": ("objects", "any", "each_other"),
                "max_gap": ("objects", "any", "each_other"),
                "relative": ("objects", "any"),
            }
            if r in needs_target and (self.target is None or self.target.kind not in needs_target[r]):
                raise ValueError(f"relation {r} needs a target of kind {' or '.join(needs_target[r])}")
            if r in ("min_gap", "max_gap", "edge_distance") and self.threshold_cm is None:
                raise ValueError(f"relation {r} needs threshold_cm")
            if r == "side" and self.region is None:
                raise ValueError("relation side needs a region")
            if r == "relative" and self.direction is None:
                raise ValueError("relation relative needs a direction")
            if r == "count" and self.count is None:
                raise ValueError("relation count needs count")
            if r == "align" and self.threshold_cm is None:
                self.threshold_cm = ALIGN_DEFAULT_CM
            if r == "align" and self.axis is None:
                self.axis = "row"
            if r == "edge_distance" and not self.edges:
                raise ValueError("edge_distance needs at least one edge")
        if not self.interpretation:
            self.interpretation = describe(self)
        return self


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word if word.endswith(("s", "electronics")) and not word.endswith("ss") else word + "es"
    return word + "s"


def _n(v: float | None) -> str:
    return "?" if v is None else f"{round(v, 2):g}"


def describe(rule: Rule) -> str:
    """The one-line restatement: 'every mug >= 15.24 cm from every laptop'."""
    s = rule.subject.describe()
    sp = rule.subject.describe(plural=True)
    t = rule.target.describe() if rule.target else ""
    thr = _n(rule.threshold_cm)
    from mugpos.rules import relations  # the relation modules import this one: resolved at call time

    mod = relations.BY_KIND.get(rule.relation)
    if mod is not None and rule.relation != "other":
        line = mod.describe(rule, s, sp, t, thr)
    else:
        line = f"{s}: {rule.text.strip() or 'a rule about things the detector cannot see'}"
    if rule.context:
        line += f" (meant for {rule.context}; the setting is not detected, so it is checked on every scene)"
    if not rule.checkable:
        line += f" [not checkable: {rule.reason}]"
    return line
