"""Read a positioning rule written the way people talk, offline and deterministically.

The grammar is a slot filler over a normalised sentence: lengths ("half a foot" -> 15.24 cm), things
(vocabulary terms -> COCO labels, surface, edge, image, each other, the unseeable), cue phrases
(at least / within / never / away / near / group / line up / on the left ...) with negation scoped to
their clause, then one relation chosen by a fixed precedence. When a slot the relation needs is
missing or two readings compete, it raises `RuleError` with the nearest supported phrasings and the
Rule JSON schema rather than guess.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from mugpos.errors import RuleError
from mugpos.rules import vocabulary as V
from mugpos.rules.model import (
    AWAY_DEFAULT_CM,
    EDGE_DEFAULT_CM,
    GROUP_DEFAULT_CM,
    NEAR_DEFAULT_CM,
    SPACING_DEFAULT_CM,
    TOUCH_CM,
    Rule,
    Selector,
)
from mugpos.rules.units import Quantity, find_quantities, normalise_numbers, vague_amount
from mugpos.scene.labels import MUG_LABELS

TEMPLATES: tuple[str, ...] = (
    "Keep mugs at least 6 inches away from laptops",
    "Keep mugs within 30 cm of the keyboard",
    "No mug within 15 cm of a laptop",
    "Maintain a minimum distance of 8 inches between drinks and keyboards",
    "Keep drinks away from electronics",
    "Keep mugs near the laptop",
    "Keep drinks at least 4 inches from the edge of the table",
    "Keep mugs 10 cm from the front edge",
    "Position mugs on the right side of the desk",
    "Keep mugs in the back-left corner of the table",
    "Keep mugs in the center of the table",
    "Put the mug to the right of the laptop",
    "Keep mugs behind the keyboard",
    "Keep mugs on the table",
    "No more than 2 mugs on the desk",
    "Keep mugs at least 5 cm apart",
    "Cluster mugs within 12 inches of each other",
    "Group all drinks together",
    "Line up the mugs in a row",
    "Don't let mugs touch the laptop",
    "CRITICAL: never put a drink within half a foot of a laptop",
    "Place all beverages on coasters",
)

# --- cue phrases: (pattern, tag). Tags: MIN / MAX comparatives (strong, need a number unless noted),
# near/away words (weak, default distances), NEG, and relation words.
_CUES: list[tuple[str, str]] = [
    # strong minimums
    (
        r"at least|no less than|not less than|no closer than|not closer than|no nearer than|not nearer than"
        r"|never closer than|never nearer than|or more|or further|or farther|(?:a )?minimum(?: distance| gap| clearance| spacing| separation| buffer)?(?: of)?|min\.?"
        r"|more than|greater than|further than|farther than|beyond|upwards of|in excess of",
        "MIN!",
    ),
    # strong maximums
    (
        r"at most|no more than|not more than|no further than|no farther than|not further than|not farther than"
        r"|never more than|never further than|never farther than|or less|or closer|(?:a )?maximum(?: distance| gap| separation)?(?: of)?|max\.?"
        r"|up to|within|inside|less than|fewer than|closer than|nearer than|under|no greater than|not exceeding|not to exceed",
        "MAX!",
    ),
    # weak, with default distances
    (
        r"away from|away|far from|far away from|far away|clear of|clear from|keep clear|distant from|well away|buffer|clearance"
        r"|separat(?:e|ed|ion)|distance|gap|room|space between|spacing|apart|spaced(?: out)?|space (?:them |it )?out|space|keep off",
        "MIN~",
    ),
    (
        r"near(?:by)?|close to|close by|close|next to|beside|besides|adjacent to|alongside|by the side of|handy|within reach"
        r"|within arm's reach|reachable|nearer",
        "MAX~",
    ),
    (r"touch(?:es|ing)?|contact|bump(?:ing)? into|knock(?:ing)? into|lean(?:ing)? (?:on|against)", "TOUCH"),
    (
        r"never|not|no|don't|do not|dont|doesn't|does not|mustn't|must not|shouldn't|should not|cannot|can't|can not"
        r"|won't|will not|isn't|aren't|is not|are not|avoid(?:ing|s)?|prevent(?:ing|s)?|nor|neither|without|nothing|none"
        r"|forbid(?:den)?|prohibit(?:ed)?|disallow(?:ed)?|refrain from|stop",
        "NEG",
    ),
    (
        r"group(?:ed|ing|s)?|cluster(?:ed|ing|s)?|together|gather(?:ed)?|consolidat(?:e|ed)|bunch(?:ed)?(?: up)?"
        r"|in one (?:place|spot|area|location|zone|corner)|collect(?:ed)?",
        "GROUP",
    ),
    (
        r"align(?:ed|ment)?|line (?:them |it )?up|lined up|in a (?:straight )?(?:row|line|column)|in (?:a )?single file"
        r"|in line|straight line|neat row|evenly in a row",
        "ALIGN",
    ),
    (r"(?:hang(?:ing|s)? )?(?:off|over)(?=\s)|fall(?:ing)? off|leave|leaving|overhang(?:ing)?", "OFF"),
    (r"on|onto|upon|on top of|atop|stay on|stays on|sit on|stand on|rest on", "ON"),
]
_CUE_RX = [(re.compile(rf"\b(?:{p})(?![\w'])"), tag) for p, tag in _CUES]
_CLAUSE_BREAK = re.compile(r"[;.!?]|\b(?:but|however|although|though|unless|except|otherwise)\b")
_NEEDS_NUMBER = re.compile(
    r"^(?:at least|no less|not less|no closer|not closer|no nearer|not nearer|never closer|never nearer|or |minimum|min|more|greater"
    r"|further|farther|beyond|over|upwards|in excess|at most|no more|not more|no further|no farther|not further|not farther"
    r"|never more|never further|never farther|maximum|max|up to|within$|inside|less|fewer|closer|nearer than|under|no greater|not exceed)"
)

_REL_DIR = re.compile(
    r"\b(?:(?:to|on|at)\s+(?:the\s+)?)?(?P<side>left|right)(?:[- ]hand)?(?:\s+(?:side|hand side))?\s+of\b"
    r"|\b(?P<front>in\s+front\s+of|ahead\s+of|before|below|beneath|in\s+front)\b"
    r"|\b(?P<behind>behind|in\s+back\s+of|at\s+the\s+back\s+of|above|beyond|past)\b"
)
_CORNER = re.compile(
    r"\b(?P<v>front|back|rear|top|bottom|near|far)[- ]?(?P<h>left|right)\b|\b(?P<h2>left|right)[- ](?P<v2>front|back|rear|top|bottom)\b"
)
_SIDE = re.compile(
    r"\b(?P<w>left|right|front|back|rear|center|centre|middle|central|centred|centered|top|bottom)"
    r"(?:[- ]hand)?(?:\s+(?:side|half|part|portion|area|section|end|third|zone|of))?\b"
)
_PERSON_FRAME = re.compile(r"\bof\s+(?:me|you|the user|the person|them|him|her|my seat|the chair)\b")
_COUNT_CUE = re.compile(
    r"\b(?:at most|no more than|not more than|never more than|maximum(?: of)?|max\.?|up to|only|just|fewer than|less than"
    r"|more than|at least|limit(?:ed)?(?: to)?|a maximum of|exactly)\s+$"
)
_VERT = {
    "front": "front",
    "bottom": "front",
    "near": "front",
    "back": "back",
    "rear": "back",
    "top": "back",
    "far": "back",
}
_SIDE_WORD = {
    "left": "left", "right": "right", "front": "front", "bottom": "front", "back": "back", "rear": "back",
    "top": "back", "center": "center", "centre": "center", "middle": "center", "central": "center",
    "centred": "center", "centered": "center",
}  # fmt: skip
_SEVERITY_PREFIX = re.compile(
    r"^\s*[\[(]?\s*(?P<s>critical|crit|urgent|high|important|error|severe|warning|warn|medium|caution|moderate"
    r"|info|information|informational|low|note|fyi|tip|suggestion|optional|minor)\s*[\])]?\s*(?:[:\-–—!]+|\s(?=\w))\s*"
)
_SEV_MAP = {
    "critical": "critical", "crit": "critical", "urgent": "critical", "high": "critical",
    "important": "critical", "error": "critical", "severe": "critical",
    "warning": "warning", "warn": "warning", "medium": "warning", "caution": "warning", "moderate": "warning",
}  # fmt: skip
_MODAL_CRITICAL = re.compile(
    r"\b(?:must|mustn't|never|always|required|mandatory|have to|has to|needs? to|absolutely|under no circumstances|at all times|critical)\b"
)
_MODAL_INFO = re.compile(
    r"\b(?:prefer(?:ably|red|s)?|ideally|try to|if possible|when(?:ever)? possible|where possible|nice to|optional(?:ly)?|consider|might|could|if you can)\b"
)


@dataclass
class _Cue:
    tag: str
    start: int
    end: int
    text: str


@dataclass
class _Parse:
    text: str
    t: str
    severity: str = "warning"
    context: str | None = None
    notes: list[str] = field(default_factory=list)


def _fail(text: str, message: str, hint: str | None = None) -> RuleError:
    return RuleError(
        message,
        hint=hint
        or "Rephrase like one of the suggestions, or send the rule as structured JSON following the "
        "schema in details.schema (the add_rule tool accepts it).",
        suggestions=nearest_phrasings(text),
        schema=Rule.model_json_schema(),
    )


def nearest_phrasings(text: str, n: int = 3) -> list[str]:
    """The supported phrasings closest to `text` (difflib), best first."""
    low = text.lower()[:500]
    scored = sorted(
        TEMPLATES,
        key=lambda tpl: (-difflib.SequenceMatcher(None, low, tpl.lower()).ratio(), tpl),
    )
    return scored[:n]


def _find_cues(t: str) -> list[_Cue]:
    out: list[_Cue] = []
    pos = 0
    while pos <= len(t):
        best: tuple[int, int, str] | None = None
        for rx, tag in _CUE_RX:
            m = rx.search(t, pos)
            if m and m.end() > m.start():
                cand = (m.start(), -(m.end() - m.start()), tag)
                if best is None or cand[:2] < best[:2]:
                    best = cand
        if best is None:
            break
        s, neg_len, tag = best
        out.append(_Cue(tag, s, s - neg_len, t[s : s - neg_len]))
        pos = s - neg_len
    return out


def _negated(cues: list[_Cue], at: int, t: str) -> bool:
    """Odd number of negations before `at` in the same clause."""
    count = 0
    for c in cues:
        if c.tag == "NEG" and c.end <= at and not _CLAUSE_BREAK.search(t, c.end, at):
            count += 1
    return count % 2 == 1


def _severity(p: _Parse) -> None:
    m = _SEVERITY_PREFIX.match(p.t)
    if m:
        p.severity = _SEV_MAP.get(m.group("s"), "info")
        p.t = p.t[m.end() :]
    elif _MODAL_CRITICAL.search(p.t):
        p.severity = "critical"
    elif _MODAL_INFO.search(p.t):
        p.severity = "info"


def _context(p: _Parse) -> None:
    m = V.CONTEXT.match(p.t)
    if m:
        p.context = _ctx_name(m.group("ctx"))
        p.t = p.t[m.end() :]
        return
    m = V.CONTEXT_INLINE.search(p.t)
    if m:
        p.context = _ctx_name(m.group("ctx"))
        p.t = (p.t[: m.start()] + p.t[m.end() :]).strip()


def _ctx_name(raw: str) -> str:
    word = raw.split()[0]
    return {"meeting": "meetings", "meetings": "meetings", "conference": "meetings"}.get(
        word, f"{word} settings"
    )


def _selector(m: V.Mention) -> Selector:
    t = m.term
    if t.kind == "objects":
        return Selector(kind="objects", labels=sorted(t.labels), word=t.word)
    return Selector(kind=t.kind, word=t.word)  # type: ignore[arg-type]


def _union(ms: list[V.Mention]) -> Selector:
    if any(m.term.kind == "any" for m in ms):
        return Selector(kind="any", word="other objects")
    labels: set[str] = set()
    for m in ms:
        labels |= m.term.labels
    words = list(dict.fromkeys(m.term.word for m in ms))
    return Selector(kind="objects", labels=sorted(labels), word=" or ".join(words))


def parse_rule(text: str, *, max_chars: int | None = None) -> Rule:
    """The Rule a plain-language sentence states, or `RuleError` with suggestions and the schema."""
    if not isinstance(text, str):
        raise RuleError("A rule must be text.", hint="Send the rule as a sentence or as structured JSON.")
    if max_chars is None:
        from mugpos.settings import get_settings

        max_chars = get_settings().max_rule_chars
    if len(text) > max_chars:
        raise RuleError(
            f"The rule is {len(text)} characters long; the limit is {max_chars}.",
            hint="State one rule per sentence, e.g. 'Keep mugs at least 6 inches away from laptops'.",
            code="rule_too_long",
        )
    stripped = " ".join(text.split())
    if not stripped:
        raise _fail(text, "The rule is empty.")
    try:
        return _parse(stripped)
    except ValidationError as exc:
        first = exc.errors()[0].get("msg", str(exc)) if exc.errors() else str(exc)
        raise _fail(text, f"Could not build a rule from {stripped!r}: {first}") from None


def _parse(text: str) -> Rule:
    t = text.lower().replace("’", "'").replace("‘", "'")
    t = re.sub(r"\s+", " ", t).strip().rstrip(".!")
    p = _Parse(text=text, t=t)
    _severity(p)
    _context(p)
    t = re.sub(r"\bone another\b", "each other", p.t)
    t = re.sub(r"\bin one (?:place|spot|area|location|zone|corner|group)\b", "together", t)
    t = re.sub(r"\bat (?:a|one) time\b|\bat once\b", "at a time", t)
    t = normalise_numbers(t)
    t = re.sub(r"\b(?:a single|one single|one)\b(?=\s+\w)", "1", t)
    t = re.sub(r"(?<=\w)-(?=(?:left|right|front|back|rear|hand)\b)", " ", t)
    p.t = t
    vague = vague_amount(t)
    if vague:
        raise _fail(
            text,
            f"'{vague}' is not a distance I can check.",
            hint="Give a number and a unit, e.g. '10 cm' or '4 inches'.",
        )

    quantities = find_quantities(t)
    mentions = V.find_terms(t)
    cues = _find_cues(_mask(t, [(q.start, q.end) for q in quantities] + [(m.start, m.end) for m in mentions]))

    # --- unitless numbers: a count ("no more than 2 mugs") or a missing unit ---
    count_info = _count(t, quantities, mentions, cues)
    if count_info is None:
        for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])", t):
            if not any(q.start <= m.start() < q.end for q in quantities):
                raise _fail(
                    text,
                    f"The number {m.group(1)} has no unit.",
                    hint="Add a unit (mm, cm, m, inches, feet), e.g. '15 cm' or '6 inches'.",
                )

    objs = [m for m in mentions if m.term.kind in ("objects", "any", "unobservable")]
    kinds = {m.term.kind for m in mentions}
    unobservable = [m for m in mentions if m.term.kind == "unobservable"]

    # --- subject ---
    subj_m = next((m for m in objs if m.term.kind == "objects" and m.term.labels & MUG_LABELS), None)
    if subj_m is None:
        subj_m = next((m for m in objs if m.term.kind == "objects"), None)
    implicit_subject = subj_m is None
    subject = (
        Selector(kind="objects", labels=sorted(MUG_LABELS), word="mug")
        if subj_m is None
        else _selector(subj_m)
    )
    others = [m for m in objs if m is not subj_m]

    reason: str | None = None
    if unobservable:
        reason = "; ".join(dict.fromkeys(m.term.reason for m in unobservable))
    if V.STABILITY.search(t):
        reason = _join(reason, "whether a surface is stable or flat cannot be seen in a photo")

    # --- handedness ---
    if V.DOMINANT.search(t) and re.search(r"\b(?:dominant|off[- ]hand|non[- ]?dominant)\b", t):
        hand = "right" if V.RIGHT_HANDED.search(t) else "left" if V.LEFT_HANDED.search(t) else None
        non_dom = bool(re.search(r"\bnon[- ]?dominant\b|\boff[- ]hand\b", t))
        if hand is None:
            return _finish(
                p,
                subject=subject,
                target=None,
                relation="other",
                reason=_join(
                    reason,
                    "the user's dominant hand is not known; say 'position mugs on the left side' "
                    "for a right-handed user (or 'on the right side' for a left-handed one)",
                ),
            )
        side = ({"right": "left", "left": "right"} if non_dom else {"right": "right", "left": "left"})[hand]
        p.notes.append(f"{hand}-handed user: the {'non-' if non_dom else ''}dominant side is the {side}")
        return _finish(p, subject=subject, target=None, relation="side", region=side, reason=reason)

    zone = next((m for m in mentions if m.term.kind == "zone"), None)
    if zone is not None and not any(c.tag == "GROUP" for c in cues):
        reason = _join(reason, zone.term.reason)

    def tag_cues(tag: str) -> list[_Cue]:
        return [c for c in cues if c.tag == tag]

    # --- align ---
    if tag_cues("ALIGN"):
        thr = _one_quantity(text, quantities)
        axis = (
            "column" if re.search(r"\b(?:column|vertical(?:ly)?|single file|front to back)\b", t) else "row"
        )
        return _finish(
            p,
            subject=subject,
            target=None,
            relation="align",
            axis=axis,
            threshold_cm=thr.cm if thr else None,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    # --- count ---
    if count_info is not None:
        n, bound = count_info
        return _finish(
            p,
            subject=subject,
            target=None,
            relation="count",
            count=n,
            bound=bound,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    polarity, deciding, pol_cue = _polarity(text, t, cues, quantities)
    q = _one_quantity(text, quantities)
    touch = [c for c in cues if c.tag == "TOUCH"]

    # --- grouping / spacing between the subject's own members ---
    each_other = "each_other" in kinds or any(c.text.startswith(("apart", "spac")) for c in cues)
    group = tag_cues("GROUP")
    if (group or each_other) and not [m for m in others if m.term.kind != "each_other"]:
        if group and not each_other and not _negated(cues, group[0].start, t):
            polarity = "max" if polarity is None or deciding != "strong" else polarity
        if group and _negated(cues, group[0].start, t):
            polarity = "min"
        if touch:
            polarity, thr_cm, defaulted = "min", TOUCH_CM, not q
            thr_cm = q.cm if q else TOUCH_CM
        elif polarity == "max" or (polarity is None and group):
            thr_cm, defaulted = (q.cm, False) if q else (GROUP_DEFAULT_CM, True)
            polarity = "max"
        else:
            polarity = "min"
            thr_cm, defaulted = (q.cm, False) if q else (SPACING_DEFAULT_CM, True)
        if zone is not None:
            p.notes.append("the designated area is not visible; only the grouping is checked")
        return _finish(
            p,
            subject=subject,
            target=Selector(kind="each_other", word="each other"),
            relation="min_gap" if polarity == "min" else "max_gap",
            threshold_cm=thr_cm,
            defaulted=defaulted,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    # --- edge of the surface ---
    edge_m = next((m for m in mentions if m.term.kind == "edge"), None)
    if (edge_m is not None and not [m for m in others if m.term.kind != "unobservable"]) or (
        edge_m is not None and (edge_m.start < min((m.start for m in others), default=10**9))
    ):
        assert edge_m is not None
        edges = _edges(edge_m.text)
        off = [c for c in cues if c.tag == "OFF"]
        if polarity is None and off and not q:
            bound, thr_cm, defaulted = "min", 0.0, False
            p.notes.append("'off/over the edge' means the box must lie wholly on the surface")
        else:
            bound = "max" if polarity == "max" else "min"
            thr_cm, defaulted = (q.cm, False) if q else (EDGE_DEFAULT_CM, True)
        return _finish(
            p,
            subject=subject,
            target=Selector(kind="edge", word="edge"),
            relation="edge_distance",
            bound=bound,
            edges=edges,
            threshold_cm=thr_cm,
            defaulted=defaulted,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    # --- relative to an object: left of / in front of / behind ---
    for m in _REL_DIR.finditer(t):
        direction = (
            "left_of"
            if m.group("side") == "left"
            else "right_of"
            if m.group("side")
            else ("in_front_of" if m.group("front") else "behind")
        )
        after = [o for o in mentions if o.start >= m.end() and o.start - m.end() <= 30]
        nxt = after[0] if after else None
        if nxt is not None and nxt.term.kind in ("objects", "any", "unobservable") and nxt is not subj_m:
            if q is not None:
                raise _fail(
                    text,
                    "A rule with both a direction and a distance is two rules.",
                    hint="Split it, e.g. 'Put the mug to the right of the laptop' and 'Keep mugs at least 10 cm from the laptop'.",
                )
            target = _union([o for o in others if o.start >= m.end()] or [nxt])
            return _finish(
                p,
                subject=subject,
                target=target,
                relation="relative",
                direction=direction,
                negated=_negated(cues, m.start(), t),
                reason=reason,
                implicit_subject=implicit_subject,
            )

    # --- a half, corner or the centre of the surface or image ---
    region, region_at = _region(t)
    if (region is not None and not [m for m in others if m.term.kind != "unobservable"]) or (
        region is not None and _PERSON_FRAME.search(t)
    ):
        frame = "image" if "image" in kinds else "surface"
        if q is not None:
            raise _fail(
                text,
                "A distance does not fit a rule about a side of the surface.",
                hint="Say 'Position mugs on the right side of the desk', or give a distance from an object or the edge.",
            )
        return _finish(
            p,
            subject=subject,
            target=Selector(kind=frame, word="image" if frame == "image" else "surface"),
            relation="side",
            region=region,
            frame=frame,
            negated=_negated(cues, region_at, t),
            reason=reason,
            implicit_subject=implicit_subject,
        )

    # --- distance to other objects ---
    if others:
        target = (
            _union(others)
            if all(o.term.kind != "unobservable" for o in others)
            else _selector(unobservable[0])
        )
        if touch:
            polarity = "min" if _negated(cues, touch[0].start, t) else "max"
            thr_cm, defaulted = (q.cm, False) if q else (TOUCH_CM, not q)
            if polarity == "max":
                thr_cm = q.cm if q else 0.0
        elif polarity is None:
            if q is None:
                if reason:
                    return _finish(
                        p,
                        subject=subject,
                        target=target,
                        relation="other",
                        reason=reason,
                        implicit_subject=implicit_subject,
                    )
                raise _fail(
                    text,
                    "I could not tell whether the mug should be near or away from "
                    f"{target.describe(plural=True)}, or how far.",
                )
            polarity, thr_cm, defaulted = "min", q.cm, False
            p.notes.append("a bare distance ('keep X 10 cm from Y') is read as a minimum")
        else:
            if q is None:
                if deciding == "strong" and pol_cue is not None and _NEEDS_NUMBER.match(pol_cue.text):
                    raise _fail(text, f"'{pol_cue.text}' needs a distance, e.g. '{pol_cue.text} 10 cm'.")
                thr_cm, defaulted = (AWAY_DEFAULT_CM if polarity == "min" else NEAR_DEFAULT_CM), True
            else:
                thr_cm, defaulted = q.cm, False
        if implicit_subject and not others:
            raise _fail(text, "I could not tell which objects the rule is about.")
        return _finish(
            p,
            subject=subject,
            target=target,
            relation="min_gap" if polarity == "min" else "max_gap",
            threshold_cm=thr_cm,
            defaulted=defaulted,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    # --- on the table ---
    surf = next((m for m in mentions if m.term.kind == "surface"), None)
    on = [c for c in cues if c.tag in ("ON", "OFF") and surf is not None and c.end <= surf.start]
    if surf is not None and on and q is None:
        c = on[-1]
        neg = _negated(cues, c.start, t) != (c.tag == "OFF")
        return _finish(
            p,
            subject=subject,
            target=Selector(kind="surface", word="table"),
            relation="on_surface",
            negated=neg,
            reason=reason,
            implicit_subject=implicit_subject,
        )

    if reason:
        return _finish(
            p,
            subject=subject,
            target=None,
            relation="other",
            reason=reason,
            implicit_subject=implicit_subject,
        )
    if not mentions and not quantities:
        raise _fail(text, f"I could not read {text!r} as a rule about where mugs should stand.")
    raise _fail(text, f"I could not tell what {text!r} asks for (a distance, a side, a count, a grouping?).")


def _join(a: str | None, b: str) -> str:
    return b if not a else f"{a}; {b}"


def _mask(t: str, spans: list[tuple[int, int]]) -> str:
    """Blank out lengths and things so their words ("near edge", "no 1") are not read as cues."""
    chars = list(t)
    for s, e in spans:
        chars[s:e] = " " * (e - s)
    return "".join(chars)


def _one_quantity(text: str, qs: list[Quantity]) -> Quantity | None:
    if not qs:
        return None
    first = qs[0]
    for q in qs[1:]:
        if abs(q.cm - first.cm) > 0.05 * max(first.cm, q.cm) + 0.01:
            raise _fail(
                text,
                f"The rule gives two different distances ({first.cm:g} cm and {q.cm:g} cm).",
                hint="Give one distance per rule; for a range, add two rules (at least ... / within ...).",
            )
    return first


def _polarity(
    text: str, t: str, cues: list[_Cue], qs: list[Quantity]
) -> tuple[str | None, str | None, _Cue | None]:
    """min or max, from strong comparatives first, then near/away words; negation flips."""
    for strength in ("strong", "weak"):
        found: list[tuple[str, _Cue]] = []
        for c in cues:
            if (strength == "strong" and c.tag in ("MIN!", "MAX!")) or (
                strength == "weak" and c.tag in ("MIN~", "MAX~")
            ):
                pol = "min" if c.tag.startswith("MIN") else "max"
                if _negated(cues, c.start, t):
                    pol = "max" if pol == "min" else "min"
                found.append((pol, c))
        if found:
            pols = {f[0] for f in found}
            if len(pols) > 1:
                if strength == "weak":
                    # "keep away ... not near": weak words disagree only through wording; trust the first
                    return found[0][0], strength, found[0][1]
                raise _fail(
                    text,
                    "The rule says both 'at least' and 'at most' (or similar).",
                    hint="For a range, add two rules: 'at least 10 cm from X' and 'within 30 cm of X'.",
                )
            return found[0][0], strength, found[0][1]
    return None, None, None


def _count(t: str, qs: list[Quantity], mentions: list[V.Mention], cues: list[_Cue]) -> tuple[int, str] | None:
    for m in re.finditer(r"(?<![\w.])(\d+)(?![\w.])\s+(?:\w+\s+)?", t):
        if any(q.start <= m.start() < q.end for q in qs):
            continue
        nxt = next((o for o in mentions if o.start == m.end() or o.start == m.end(1) + 1), None)
        if nxt is None or nxt.term.kind != "objects":
            continue
        n = int(m.group(1))
        before = t[: m.start()]
        cue = _COUNT_CUE.search(before)
        neg = _negated(cues, m.start(), t)
        if cue is None:
            if re.search(r"\b(?:at a time|allowed|permitted|max(?:imum)?|limit)\b", t):
                return n, "max"
            continue
        w = cue.group(0).strip()
        if w.startswith(("fewer", "less")):
            return (max(n - 1, 0), "max") if not neg else (n, "min")
        if w.startswith(("more than",)):
            return (n, "max") if neg else (n + 1, "min")
        if w.startswith("at least"):
            return (n, "min") if not neg else (max(n - 1, 0), "max")
        if w.startswith("exactly"):
            return None
        return n, "max"
    return None


def _edges(mention_text: str) -> list[str]:
    m = re.search(r"\b(front|back|rear|near|far|left|right)\b", mention_text)
    if not m:
        return ["left", "right", "back", "front"]
    return [{"rear": "back", "near": "front", "far": "back"}.get(m.group(1), m.group(1))]


def _region(t: str) -> tuple[str | None, int]:
    m = _CORNER.search(t)
    if m:
        v = _VERT[m.group("v") or m.group("v2")]
        h = m.group("h") or m.group("h2")
        return f"{v}-{h}", m.start()
    for m in _SIDE.finditer(t):
        w = m.group("w")
        # "in front of" and "in back of" are relations to objects, handled before
        if (
            w in ("front", "back")
            and re.match(r"\s+of\b", t[m.end("w") :])
            and re.search(r"\bin\s+$", t[: m.start()])
            and not _PERSON_FRAME.match(t, m.end("w") + 1)
        ):
            continue
        return _SIDE_WORD[w], m.start()
    return None, -1


def _finish(
    p: _Parse,
    *,
    subject: Selector,
    target: Selector | None,
    relation: str,
    reason: str | None = None,
    implicit_subject: bool = False,
    **fields: object,
) -> Rule:
    notes = list(p.notes)
    if implicit_subject:
        notes.append("the rule names no object to place: mugs assumed")
    if V.HOT.search(p.t) and reason is None:
        notes.append("temperature is not visible: every matching drink is treated as hot")
    fields = {k: v for k, v in fields.items() if v is not None}
    return Rule(
        text=p.text,
        subject=subject,
        target=target,
        relation=relation,  # type: ignore[arg-type]
        severity=p.severity,  # type: ignore[arg-type]
        checkable=reason is None,
        reason=reason,
        context=p.context,
        notes=notes,
        **fields,  # type: ignore[arg-type]
    )
