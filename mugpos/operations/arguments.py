"""Every tool argument once: its type, constraints and a description with its unit and an example.

The MCP tools (`mugpos.mcp_server.tools`) are typed functions whose parameters use these aliases, so
the SDK derives their input schemas from them; the tool table for the RunPod worker
(`mugpos.operations.calls`) builds its argument models from the same aliases. One wording, every door.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mugpos.rules.model import Rule
from mugpos.scene.model import Scene
from mugpos.stores.layouts import LayoutFilters

ImageArg = Annotated[
    str,
    Field(
        description="The photo: a local file path (inside the server's allowed folders), an http(s) "
        "URL, a data URI, raw base64, or a mugpos:// resource URI. "
        "E.g. '/home/me/Pictures/desk.jpg' or 'https://example.com/desk.jpg'.",
        min_length=1,
    ),
]
OptionalImageArg = Annotated[
    str | None,
    Field(
        description="The photo, as for analyze_image (path, http(s) URL, data URI, base64 or "
        "mugpos:// URI), e.g. '/home/me/Pictures/desk.jpg'. Give exactly one of image, analysis_id"
        " or the alternative this tool names.",
    ),
]
AnalysisIdArg = Annotated[
    str | None,
    Field(
        description="The analysis_id an earlier analyze_image returned, e.g. 'a-20261202-1a2b3c4d5e' "
        "(fastest: nothing is detected again).",
    ),
]
RulesArg = Annotated[
    list[str] | None,
    Field(
        description="Extra rules in plain language for this call only (not saved), checked with the "
        "saved ones; distances in mm, cm, m, inches or feet. "
        "E.g. ['Keep mugs at least 6 inches away from laptops'].",
    ),
]
PxPerCmArg = Annotated[
    float | None,
    Field(
        gt=0,
        description="The photo's scale in pixels per centimetre on the table, if known, e.g. 12.5 "
        "(a 9.5 cm wide mug spans about 119 px). Omit it and the scale is estimated from objects "
        "of known size.",
    ),
]
UseSavedRulesArg = Annotated[
    bool,
    Field(
        description="Also check the saved rules (list_rules shows them). Default true; e.g. false "
        "to check only `rules`."
    ),
]
DetailArg = Annotated[
    Literal["compact", "full"],
    Field(
        description="'compact' (default): each mug's position, its nearest objects and each rule's "
        "verdict with its worst violations, about 2k tokens even for a busy photo; `omitted` counts "
        "what was left out. 'full': every object's box, every relation and every measurement "
        "(the mugpos://analyses/{analysis_id} resource has the same).",
    ),
]
SceneArg = Annotated[
    Scene | None,
    Field(
        description="A scene from your own detector instead of a photo: image size in pixels and "
        "objects with COCO labels and boxes [x1, y1, x2, y2] in pixels (origin top-left); "
        "px_per_cm optional. E.g. {'image': {'width': 1600, 'height': 1000}, 'objects': "
        "[{'label': 'cup', 'box': [1020, 400, 1100, 480]}, {'label': 'laptop', 'box': [600, 350, 1000, 650]}]}.",
    ),
]
SearchTextArg = Annotated[
    str | None,
    Field(
        description="A layout described in words, e.g. 'laptop with a mug on the right'. Needs the "
        "CLIP embedder (mugpos://status says whether it is on).",
    ),
]
KArg = Annotated[int, Field(ge=1, le=100, description="How many layouts to return, 1 to 100, e.g. 5.")]
FiltersArg = Annotated[
    LayoutFilters | None,
    Field(
        description="Only layouts that match: labels_all (COCO labels all present, e.g. "
        "['laptop', 'cup']), has_violations (true/false), since/until (ISO 8601 times). "
        "Any other key is refused.",
    ),
]
RuleTextArg = Annotated[
    str | None,
    Field(
        description="The rule in plain language, e.g. 'Keep mugs at least 6 inches away from "
        "laptops'; distances in mm, cm, m, inches or feet. Give text or rule, not both.",
    ),
]
RuleArg = Annotated[
    Rule | None,
    Field(
        description="A structured rule instead of text (thresholds in centimetres), e.g. "
        "{'subject': {'labels': ['cup']}, 'target': {'labels': ['laptop']}, 'relation': 'min_gap', "
        "'threshold_cm': 15.24}. mugpos://vocabulary lists the words; explain_rule shows the rule a "
        "text becomes.",
    ),
]
SeverityArg = Annotated[
    Literal["critical", "warning", "info"] | None,
    Field(description="How loudly a violation is reported: 'critical', 'warning' (default) or 'info'."),
]
RuleIdArg = Annotated[
    str, Field(min_length=1, description="A saved rule's id from list_rules or add_rule, e.g. 'r-3f9a1c'.")
]
ExplainTextArg = Annotated[
    str,
    Field(
        min_length=1,
        description="The rule in plain language, e.g. 'no drinks within 20 cm of the keyboard'.",
    ),
]
