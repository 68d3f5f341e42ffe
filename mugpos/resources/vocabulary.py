"""`mugpos://vocabulary`: the words rules may use, so an assistant can phrase rules that parse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mugpos.resources._common import JSON, to_json
from mugpos.scene.labels import (
    COCO_CLASSES,
    CONTEXT_LABELS,
    DRINK_LABELS,
    ELECTRONICS_LABELS,
    MUG_LABELS,
    SURFACE_LABELS,
)

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos

# The words DESIGN.md fixes; the rules package's own terms, when present, are added to these.
_GROUP_WORDS = {
    "mug": {"words": ["mug", "cup", "coffee", "tea"], "labels": sorted(MUG_LABELS)},
    "drink": {"words": ["drink", "beverage", "liquid"], "labels": sorted(DRINK_LABELS)},
    "electronics": {"words": ["electronics"], "labels": sorted(ELECTRONICS_LABELS)},
    "surface": {"words": ["table", "desk", "surface"], "labels": sorted(SURFACE_LABELS)},
}
_UNITS = {
    "mm": ["mm", "millimetre", "millimeter"],
    "cm": ["cm", "centimetre", "centimeter"],
    "m": ["m", "metre", "meter"],
    "in": ["in", "inch", "inches", '"'],
    "ft": ["ft", "foot", "feet", "'"],
}
_FORMS = [
    "Keep mugs at least 6 inches away from laptops",
    "Keep drinks more than 10 cm from electronics",
    "Mugs must stay on the table",
    "Keep the mug within 30 cm of the keyboard",
    "Mugs should be on the right side of the laptop",
    "No cups near the edge of the table (at least two inches)",
]


def vocabulary() -> dict[str, Any]:
    vocab: dict[str, Any] = {
        "objects": list(COCO_CLASSES),
        "common_objects": sorted(CONTEXT_LABELS),
        "groups": _GROUP_WORDS,
        "units": _UNITS,
        "numbers": "digits, decimals, fractions (1/2, ½) and number words (six, twenty-five, a foot and a half)",
        "rule_forms": _FORMS,
        "source": "engine.labels",
    }
    try:
        from mugpos.rules.units import UNITS

        vocab["units"] = {u: _UNITS.get(u, [u]) for u in UNITS}
    except ImportError:  # the rules package is optional for this resource
        pass
    try:
        from mugpos.rules.vocabulary import ALL_LABEL_GROUPS, TERMS
    except ImportError:
        return vocab
    words: dict[str, dict[str, Any]] = {}
    frames: dict[str, str] = {}
    unseeable: dict[str, str] = {}
    for pattern, term in TERMS:
        if term.kind == "objects":
            entry = words.setdefault(term.word, {"labels": sorted(term.labels), "patterns": []})
            entry["patterns"].append(pattern)
        elif term.kind == "unobservable":
            unseeable[term.word] = term.reason
        else:
            frames[term.word] = term.kind
    vocab["groups"] = {
        **_GROUP_WORDS,
        **{k: {"words": [k], "labels": v} for k, v in ALL_LABEL_GROUPS.items() if k not in _GROUP_WORDS},
    }
    vocab["words"] = words
    vocab["frames"] = frames
    vocab["not_checkable"] = unseeable
    vocab["source"] = "rules.vocabulary"
    try:
        from mugpos.rules.grammar import TEMPLATES
        from mugpos.rules.model import Rule

        vocab["rule_forms"] = list(TEMPLATES)
        vocab["rule_schema"] = Rule.model_json_schema()
    except ImportError:
        pass
    return vocab


def register(server: MCPServer[Any], app: Mugpos) -> None:
    @server.resource(
        "mugpos://vocabulary",
        name="vocabulary",
        title="Rule vocabulary",
        description="Object words, groups (mug, drink, electronics), length units, number forms and "
        "example rule phrasings that the rule interpreter understands.",
        mime_type=JSON,
    )
    async def rule_vocabulary() -> str:
        return to_json(vocabulary())
