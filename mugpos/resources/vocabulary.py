"""`mugpos://vocabulary`: the words rules may use, so an assistant can phrase rules that parse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mugpos.resources._common import JSON, to_json
from mugpos.rules.model import Rule
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

# The group words every client may rely on; the rules package's own terms are added to these.
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


def vocabulary() -> dict[str, Any]:
    """Everything a rule may say, read from the rules package itself so the two cannot drift."""
    # Imported when read: the grammar compiles a lark parser (~0.15 s with its lexicon), which a
    # server's start and its first analysis do not need.
    from mugpos.rules.grammar import TEMPLATES
    from mugpos.rules.units import UNITS
    from mugpos.rules.vocabulary import ALL_LABEL_GROUPS, TERMS

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
    return {
        "objects": list(COCO_CLASSES),
        "common_objects": sorted(CONTEXT_LABELS),
        "groups": {
            **_GROUP_WORDS,
            **{k: {"words": [k], "labels": v} for k, v in ALL_LABEL_GROUPS.items() if k not in _GROUP_WORDS},
        },
        "units": {u: _UNITS.get(u, [u]) for u in UNITS},
        "numbers": "digits, decimals, fractions (1/2, ½) and number words (six, twenty-five, a foot and a half)",
        "rule_forms": list(TEMPLATES),
        "words": words,
        "frames": frames,
        "not_checkable": unseeable,
        "rule_schema": Rule.model_json_schema(),
    }


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
