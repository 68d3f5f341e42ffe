"""The words rules use for things, mapped to COCO labels, surfaces, edges and the unseeable.

Each entry is a regular expression over lower-case text (word boundaries added) and what it names.
Longer phrases win over shorter ones ("wine glass" before "glass", "electronic devices" before
"devices"). Things the detector cannot see carry the reason a rule about them is not checkable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mugpos.scene.labels import COCO_CLASSES, DRINK_LABELS, ELECTRONICS_LABELS, MUG_LABELS, SURFACE_LABELS

FOOD_LABELS = frozenset(
    {"banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"}
)
UTENSIL_LABELS = frozenset({"fork", "knife", "spoon"})
BAG_LABELS = frozenset({"backpack", "handbag", "suitcase"})
APPLIANCE_LABELS = frozenset({"microwave", "oven", "toaster", "refrigerator", "sink"})


@dataclass(frozen=True)
class Term:
    """What a word names. kind: objects | any | surface | edge | image | each_other | unobservable."""

    kind: str
    word: str
    labels: frozenset[str] = frozenset()
    reason: str = ""


def _obj(word: str, labels: frozenset[str] | set[str]) -> Term:
    return Term("objects", word, frozenset(labels))


_NOT_COCO = "is not among the 80 COCO classes the detector recognises"

# (pattern, term). Patterns are matched case-insensitively with word boundaries.
TERMS: list[tuple[str, Term]] = [
    # --- mugs and drinks ---
    (
        r"(?:coffee |tea |hot |cold )?(?:mugs?|cups?|teacups?|coffee ?cups?|tea ?cups?)",
        _obj("mug", MUG_LABELS),
    ),
    (r"coffees?|teas?|espressos?|lattes?|cappuccinos?|americanos?|cuppas?|cocoas?", _obj("mug", MUG_LABELS)),
    (
        r"(?:hot |cold |open |all )?(?:drinks?|beverages?|liquids?|refreshments?|drinkware|drinking vessels?|containers? of liquid)",
        _obj("drink", DRINK_LABELS),
    ),
    (r"(?:water |plastic |glass )?bottles?|flasks?|thermos(?:es)?", _obj("bottle", {"bottle"})),
    (
        r"wine ?glass(?:es)?|wineglass(?:es)?|glass(?:es)?(?: of \w+)?|tumblers?|goblets?",
        _obj("glass", {"wine glass"}),
    ),
    # --- electronics ---
    (
        r"electronic (?:devices?|equipment|gadgets?|items?)|electronics?|electrical (?:devices?|equipment|items?)"
        r"|(?:tech )?devices?|gadgets?|computers?|computer equipment|pcs?|hardware|tech",
        _obj("electronics", ELECTRONICS_LABELS),
    ),
    (r"laptops?|notebook computers?|macbooks?|chromebooks?|notebook pcs?", _obj("laptop", {"laptop"})),
    (r"keyboards?", _obj("keyboard", {"keyboard"})),
    (r"(?:computer )?mouse|mice", _obj("mouse", {"mouse"})),
    (
        r"(?:cell|mobile|smart) ?phones?|cellphones?|mobiles?|phones?|iphones?|androids?",
        _obj("phone", {"cell phone"}),
    ),
    (r"tvs?|televisions?|monitors?|screens?|displays?", _obj("screen", {"tv"})),
    (r"remote controls?|remotes?|tv remotes?", _obj("remote", {"remote"})),
    # --- other things on tables ---
    (r"books?|textbooks?|novels?", _obj("book", {"book"})),
    (r"bowls?|plates?|dish(?:es)?", _obj("bowl", {"bowl"})),
    (r"food|snacks?|meals?", _obj("food", FOOD_LABELS)),
    (r"utensils?|cutlery|silverware|flatware", _obj("cutlery", UTENSIL_LABELS)),
    (r"forks?", _obj("fork", {"fork"})),
    (r"knives|knife", _obj("knife", {"knife"})),
    (r"spoons?", _obj("spoon", {"spoon"})),
    (r"(?:potted |house ?)?plants?|flowers?", _obj("plant", {"potted plant"})),
    (r"vases?", _obj("vase", {"vase"})),
    (r"clocks?", _obj("clock", {"clock"})),
    (r"scissors", _obj("scissors", {"scissors"})),
    (r"people|persons?|humans?", _obj("person", {"person"})),
    (r"chairs?", _obj("chair", {"chair"})),
    (r"bags?", _obj("bag", BAG_LABELS)),
    (r"backpacks?|rucksacks?", _obj("backpack", {"backpack"})),
    (r"handbags?|purses?", _obj("handbag", {"handbag"})),
    (r"suitcases?", _obj("suitcase", {"suitcase"})),
    (r"appliances?", _obj("appliance", APPLIANCE_LABELS)),
    (r"fridges?|refrigerators?", _obj("refrigerator", {"refrigerator"})),
    (r"microwaves?", _obj("microwave", {"microwave"})),
    (r"ovens?", _obj("oven", {"oven"})),
    (r"toasters?", _obj("toaster", {"toaster"})),
    (r"sinks?", _obj("sink", {"sink"})),
    (r"cats?", _obj("cat", {"cat"})),
    (r"dogs?", _obj("dog", {"dog"})),
    # --- everything else ---
    (
        r"everything(?: else)?|anything(?: else)?|(?:all )?other (?:objects|items|things|stuff)|objects|items|things",
        Term("any", "other objects"),
    ),
    # --- each other ---
    (
        r"each other|one another|themselves|other (?:mugs|cups|drinks|beverages)",
        Term("each_other", "each other"),
    ),
    # --- frames ---
    (
        r"(?:the )?(?:(?:front|back|rear|near|far|left|right|left-hand|right-hand) )?(?:edges?|borders?|rims?|brinks?|ledges?)"
        r"(?: of the (?:table|desk|counter|surface|workspace|work surface))?|table ?edges?|desk ?edges?|counter ?edges?",
        Term("edge", "edge"),
    ),
    (
        r"(?:the )?(?:image|photo|photograph|picture|frame|camera view|camera frame|shot|snapshot)",
        Term("image", "image"),
    ),
    (
        r"(?:dining |kitchen |coffee |office |meeting |conference |work )?tables?|desks?|desktops?|workspaces?"
        r"|work ?surfaces?|work ?areas?|workstations?|counters?|countertops?|worktops?|surfaces?|tabletops?",
        Term("surface", "surface"),
    ),
    # --- a designated area: not marked in any scene ---
    (
        r"(?:designated|dedicated|assigned|specified|allocated|special) (?:\w+ )?(?:areas?|zones?|stations?|spots?|corners?|places?|sections?)"
        r"|(?:beverage|drink|coffee|tea) (?:areas?|zones?|stations?|spots?|corners?|sections?)",
        Term("zone", "designated area", reason="a designated area is not marked in the scene"),
    ),
    # --- unobservable ---
    (
        r"coasters?|trivets?|place ?mats?|mats?|saucers?|cup holders?",
        Term("unobservable", "coasters", reason=f"a coaster, mat or saucer {_NOT_COCO}"),
    ),
    (
        r"heat[- ]?(?:resistant|proof|safe)(?: surfaces?| materials?| mats?)?|heatproof(?: surfaces?)?|insulated surfaces?|wooden surfaces?|(?:glass|wood|marble) tops?",
        Term(
            "unobservable",
            "heat-resistant surfaces",
            reason="the material of a surface cannot be seen by the detector",
        ),
    ),
    (
        r"(?:paper |shared |important |printed |loose |meeting )?(?:documents?|papers?|paperwork|notes|notebooks?|notepads?|files|folders|reports|contracts|sheets|printouts?|handouts?|letters|forms|agendas?|sketches|drawings)",
        Term("unobservable", "paper documents", reason=f"paper (documents, notes, notebooks) {_NOT_COCO}"),
    ),
    (
        r"cooking (?:areas?|zones?|surfaces?|spaces?|stations?)|stoves?|stovetops?|hobs?|cooktops?|burners?|hot ?plates?|grills?|cookers?",
        Term(
            "unobservable",
            "cooking areas",
            reason=f"a cooking area or stove {_NOT_COCO} (an oven is; name it)",
        ),
    ),
    (
        r"cables?|wires?|cords?|power strips?|outlets?|sockets?|chargers?|plugs?|extension leads?",
        Term("unobservable", "cables", reason=f"a cable, cord or socket {_NOT_COCO}"),
    ),
    (
        r"printers?|projectors?|speakers?|tablets?|ipads?|headphones?|cameras?|routers?|consoles?",
        Term(
            "unobservable",
            "device",
            reason=f"this device {_NOT_COCO}; laptop, keyboard, mouse, phone, tv and remote are",
        ),
    ),
    (
        r"pens?|pencils?|stationery|staplers?|lamps?|kettles?|coffee (?:makers?|machines?)|napkins?|tissues?|candles?",
        Term("unobservable", "object", reason=f"this object {_NOT_COCO}"),
    ),
    (
        r"children|kids?|toddlers?|babies|pets?",
        Term("unobservable", "children or pets", reason="who may come by cannot be seen in one photo"),
    ),
]

# Every COCO name no pattern above reads ("cake", "zebra", "teddy bear", ...) names itself, plural
# allowed: a label the answer shows ("cake-1") can always be named in a rule. A name inside a group
# ("cake" in food) is not enough: the group word does not match the name itself.
for _name in COCO_CLASSES:
    if _name not in SURFACE_LABELS and not any(re.fullmatch(p, _name, re.IGNORECASE) for p, _ in TERMS):
        TERMS.append((re.escape(_name) + r"(?:s|es)?", _obj(_name, {_name})))


@dataclass(frozen=True)
class Mention:
    term: Term
    start: int
    end: int
    text: str


def find_terms(text: str) -> list[Mention]:
    """Every vocabulary term in `text`, left to right; at one position the longest phrase wins."""
    out: list[Mention] = []
    pos = 0
    while pos <= len(text):
        best: tuple[int, int, int] | None = None  # (start, -length, index)
        for i in range(len(TERMS)):
            m = _COMPILED[i].search(text, pos)
            if m and m.end() > m.start():
                cand = (m.start(), -(m.end() - m.start()), i)
                if best is None or cand < best:
                    best = cand
        if best is None:
            break
        start, neg_len, i = best
        end = start - neg_len
        out.append(Mention(TERMS[i][1], start, end, text[start:end]))
        pos = end
    return out


_COMPILED = [re.compile(rf"\b(?:{p})\b", re.IGNORECASE) for p, _ in TERMS]

# Signals about things no detector sees, found anywhere in a rule.
STABILITY = re.compile(
    r"\b(?:stable|unstable|stability|flat|level|uneven|wobbly|wobble|steady|sturdy|slanted|sloped|tilted|balanced|secure(?:ly)?)\b"
)
DOMINANT = re.compile(
    r"\b(?:non[- ]?dominant|dominant|handedness|writing hand|off[- ]hand|(?:left|right)[- ]handed(?:ness)?|lefty|righty|left[- ]hander|right[- ]hander)\b"
)
RIGHT_HANDED = re.compile(
    r"\b(?:i am|i'm|im|user is|they are|he is|she is|for a|for)?\s*right[- ]handed\b|\bright[- ]hander\b|\brighty\b"
)
LEFT_HANDED = re.compile(r"\bleft[- ]handed\b|\bleft[- ]hander\b|\blefty\b")
HOT = re.compile(r"\b(?:hot|warm|steaming|heated)\b")
CONTEXT = re.compile(
    r"^\s*(?:(?:when |while )?(?:in|at|for|during)\s+(?:an?\s+|the\s+)?)?"
    r"(?P<ctx>(?:office|kitchen|meeting|conference|home|work|cafe|café|restaurant|classroom|lab|laboratory|study)"
    r"(?:\s+(?:settings?|environments?|rooms?|spaces?|areas?|contexts?|situations?|hours?))?|meetings?|work|home)\s*,\s*"
)
CONTEXT_INLINE = re.compile(
    r"\b(?:in|during|at)\s+(?:an?\s+|the\s+)?(?P<ctx>(?:office|kitchen|meeting|conference)\s+(?:settings?|environments?|rooms?|spaces?)|meetings?)\b"
)

ALL_LABEL_GROUPS: dict[str, list[str]] = {
    "mug": sorted(MUG_LABELS),
    "drink": sorted(DRINK_LABELS),
    "electronics": sorted(ELECTRONICS_LABELS),
    "food": sorted(FOOD_LABELS),
    "cutlery": sorted(UTENSIL_LABELS),
}
