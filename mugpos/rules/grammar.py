"""Read a positioning rule written the way people talk, offline, and never guess.

Three steps. `lexicon.tokenize` accounts for every word (a thing, a length, a comparative, a relation
word, a negation, or filler); an unknown word stops here. A lark grammar (Earley, over the token
categories; the productions come from the relation modules) must derive the whole sentence as one
or more clauses. Each clause's parts are read by its relation module into a `Rule`. If two
derivations give different rules, or a clause's parts do not make a rule, the answer is a refusal
with the three nearest readable phrasings and the compact rule schema inline. Words that are
understood but cannot be judged from boxes (a handle's direction, coasters, papers, materials,
temperature) give a rule marked not checkable, with the reason.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import Any

from lark import Lark, Tree
from lark import Token as LarkToken
from lark.exceptions import LarkError
from lark.visitors import CollapseAmbiguities
from pydantic import ValidationError

from mugpos.errors import RuleError
from mugpos.rules import lexicon, relations
from mugpos.rules import vocabulary as V
from mugpos.rules.lexicon import Token, UnknownWord, normalise, tokenize
from mugpos.rules.model import (
    ALIGN_DEFAULT_CM,
    AWAY_DEFAULT_CM,
    EDGE_DEFAULT_CM,
    GROUP_DEFAULT_CM,
    NEAR_DEFAULT_CM,
    SPACING_DEFAULT_CM,
    TOUCH_CM,
    Rule,
    Selector,
)
from mugpos.rules.relations.base import MUG, Parts, Unreadable, is_mugish, selector
from mugpos.rules.units import find_quantities, vague_amount

DEFAULTS_CM = (
    AWAY_DEFAULT_CM,
    NEAR_DEFAULT_CM,
    EDGE_DEFAULT_CM,
    GROUP_DEFAULT_CM,
    SPACING_DEFAULT_CM,
    TOUCH_CM,
    ALIGN_DEFAULT_CM,
    0.0,
)

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
    "Keep cups off the laptop",
    "No more than 2 mugs on the desk",
    "Keep mugs at least 5 cm apart",
    "Cluster mugs within 12 inches of each other",
    "Group all drinks together",
    "Line up the mugs in a row",
    "Don't let mugs touch the laptop",
    "Keep mugs a hand's width from the keyboard",
    "CRITICAL: never put a drink within half a foot of a laptop",
    "Place all beverages on coasters",
)

# The rule's shape, short enough to travel inside an error (the full JSON schema is ~6 KB).
COMPACT_SCHEMA: dict[str, Any] = {
    "title": "Rule",
    "required": ["subject", "relation"],
    "properties": {
        "subject": {
            "kind": "objects|any",
            "labels": "COCO names, e.g. ['cup'] or ['cup','bottle','wine glass']",
        },
        "target": {
            "kind": "objects|any|each_other|edge|surface|image",
            "labels": "COCO names (kind objects)",
        },
        "relation": "min_gap|max_gap|edge_distance|side|relative|on_surface|count|align",
        "threshold_cm": "number: min_gap/max_gap gap, edge_distance, align tolerance",
        "bound": "min|max (edge_distance, count)",
        "edges": "subset of left,right,front,back (edge_distance)",
        "region": "left|right|front|back|center|front-left|front-right|back-left|back-right (side)",
        "frame": "surface|image (side)",
        "direction": "left_of|right_of|in_front_of|behind (relative)",
        "count": "integer (count)",
        "axis": "row|column (align)",
        "negated": "bool: side/relative/on_surface forbid the position",
        "severity": "critical|warning|info",
    },
    "example": {
        "subject": {"kind": "objects", "labels": ["cup"]},
        "target": {"kind": "objects", "labels": ["laptop"]},
        "relation": "min_gap",
        "threshold_cm": 15.24,
    },
}
COMPACT_SCHEMA_TEXT = json.dumps(COMPACT_SCHEMA, separators=(",", ":"))

_COMMON = (
    r"""
start: clause (conj clause)*
conj: AND | SEP | COMMA | COMMA AND | SEP AND
?clause: """
    + " | ".join(relations.ALTERNATIVES)
    + r"""
neg: NEG+
subj: things
onesubj: OBJ
tgt: things
things: OBJ (lsep OBJ)*
lsep: AND | OR | COMMA | COMMA AND | COMMA OR
dist: cmpw? LEN | LEN cmpw
cmpw: MIN | MAX
"""
)
_CATS = [
    "LEN",
    "NUM",
    "OBJ",
    "EACH",
    "EDGE",
    "SURF",
    "IMG",
    "ZONE",
    "MIN",
    "MAX",
    "AWAY",
    "NEAR",
    "APART",
    "TOUCH",
    "GROUP",
    "ALIGN",
    "OVER",
    "OFF",
    "ON",
    "BETWEEN",
    "FROM",
    "AND",
    "OR",
    "ATATIME",
    "ONLY",
    "PERSON",
    "DOMSIDE",
    "NEG",
    "SIDE",
    "DIR",
    "SEP",
    "COMMA",
]
_TERMINALS = "\n".join(f'{c}: "{c}"' for c in _CATS) + '\n%ignore " "\n'

_SEVERITY_PREFIX = re.compile(
    r"^\s*[\[(]?\s*(?P<s>critical|crit|urgent|high|important|error|severe|warning|warn|medium|caution|moderate"
    r"|info|information|informational|low|note|fyi|tip|suggestion|optional|minor)\s*[\])]?\s*(?:[:\-–—!]+|\s(?=\w))\s*"
)
_SEV_MAP = {
    "critical": "critical", "crit": "critical", "urgent": "critical", "high": "critical",
    "important": "critical", "error": "critical", "severe": "critical",
    "warning": "warning", "warn": "warning", "medium": "warning", "caution": "warning", "moderate": "warning",
}  # fmt: skip
_CRITICAL_NEG = re.compile(r"^(?:never|under no circumstances|never ever|must not|mustn't)\b")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        _COMMON + relations.GRAMMAR + _TERMINALS, parser="earley", lexer="basic", ambiguity="explicit"
    )


def refusal(text: str, message: str, hint: str | None = None, **details: Any) -> RuleError:
    """The error for a rule that is not read: nearest phrasings and the compact schema inline."""
    base = (
        hint or "Rephrase like one of the suggestions, or send the rule as structured JSON (add_rule's rule)."
    )
    return RuleError(
        message,
        hint=f"{base} Rule schema: {COMPACT_SCHEMA_TEXT}",
        suggestions=nearest_phrasings(text),
        schema=COMPACT_SCHEMA,
        **details,
    )


def nearest_phrasings(text: str, n: int = 3) -> list[str]:
    """The supported phrasings closest to `text` (difflib), best first."""
    low = text.lower()[:500]
    scored = sorted(
        TEMPLATES, key=lambda tpl: (-difflib.SequenceMatcher(None, low, tpl.lower()).ratio(), tpl)
    )
    return scored[:n]


def parse_rule(text: str, *, max_chars: int) -> Rule:
    """The one Rule a sentence states; several rules or none -> `RuleError` (never a guess)."""
    rules = parse_rules(text, max_chars=max_chars)
    if len(rules) > 1:
        raise refusal(
            text,
            f"This states {len(rules)} rules: " + "; ".join(r.interpretation for r in rules) + ".",
            hint="Add them one at a time (each as its own rule).",
            code="several_rules",
            readings=[r.model_dump(mode="json", exclude={"id"}) for r in rules],
        )
    return rules[0]


def parse_rules(text: str, *, max_chars: int) -> list[Rule]:
    """Every rule a sentence states ("keep mugs on the right and 10 cm from the edge" is two)."""
    if not isinstance(text, str):
        raise RuleError("A rule must be text.", hint="Send the rule as a sentence or as structured JSON.")
    if len(text) > max_chars:
        raise RuleError(
            f"The rule is {len(text)} characters long; the limit is {max_chars}.",
            hint="State one rule per sentence, e.g. 'Keep mugs at least 6 inches away from laptops'.",
            code="rule_too_long",
        )
    stripped = " ".join(text.split())
    if not stripped or not re.search(r"\w", stripped):
        raise refusal(text, "The rule is empty.")
    try:
        return _read(stripped)
    except Unreadable as exc:
        raise refusal(text, exc.message, exc.hint or None) from None
    except ValidationError as exc:
        first = exc.errors()[0].get("msg", str(exc)) if exc.errors() else str(exc)
        raise refusal(text, f"Could not build a rule from {stripped!r}: {first}") from None


def _read(text: str) -> list[Rule]:
    t = normalise(text)
    severity, t = _severity_prefix(t)
    context, t = _context(t)
    vague = vague_amount(t)
    if vague:
        raise Unreadable(
            f"'{vague}' is not a distance I can check.",
            "Give a number and a unit, e.g. '10 cm' or '4 inches'.",
        )
    try:
        toks, notes = tokenize(t)
    except UnknownWord as exc:
        raise Unreadable(f"I do not know the word '{exc.word}' in a rule about where things stand.") from None
    vague_word = next((k for k in toks if k.cat == "VAGUE"), None)
    if vague_word is not None:
        raise Unreadable(
            f"'{vague_word.text}' is not an amount I can check.", "Give a number and a unit, e.g. '10 cm'."
        )
    hand = next((k for k in toks if k.cat == "HANDED"), None)
    words = _drop_hand([k for k in toks if k.cat not in ("FILL", "HOTWORD")])
    if any(k.cat == "HOTWORD" for k in toks):
        notes.append("temperature is not visible: every matching drink is treated as hot")
    meta = dict(text=text, severity=severity, context=context, hand=hand, toks=toks)
    unseen = [k for k in words if k.cat == "UNSEEN"]
    if unseen or (any(k.cat == "DOMSIDE" for k in words) and hand is None):
        return [_not_checkable(words, unseen, notes, meta)]
    for k in words:
        if k.cat == "NUM" and not _count_like(words, k):
            raise Unreadable(
                f"The number {k.text} has no unit.", "Add a unit (mm, cm, m, inches, feet), e.g. '15 cm'."
            )
    while words and words[-1].cat in ("SEP", "COMMA", "AND"):
        words.pop()
    while words and words[0].cat in ("SEP", "COMMA"):
        words.pop(0)
    if not words:
        raise Unreadable(f"I could not read {text!r} as a rule about where mugs should stand.")
    return _derive(words, notes, meta)


def _drop_hand(words: list[Token]) -> list[Token]:
    """'I'm right-handed:' is context for the sentence, not part of a clause."""
    out: list[Token] = []
    skip_sep = False
    for k in words:
        if k.cat == "HANDED":
            while out and out[-1].cat in ("COMMA", "SEP"):
                out.pop()
            skip_sep = True
            continue
        if skip_sep and k.cat in ("COMMA", "SEP"):
            continue
        skip_sep = False
        out.append(k)
    return out


def _count_like(words: list[Token], k: Token) -> bool:
    i = words.index(k)
    return i + 1 < len(words) and words[i + 1].cat == "OBJ"


def _derive(words: list[Token], notes: list[str], meta: dict[str, Any]) -> list[Rule]:
    sentence = " ".join(w.cat for w in words)
    offsets, pos = {}, 0
    for i, w in enumerate(words):
        offsets[pos] = i
        pos += len(w.cat) + 1
    try:
        tree = _parser().parse(sentence)
    except LarkError:
        raise Unreadable(
            f"I could not read {meta['text']!r} as a rule (a distance, a side, a count, a grouping?)."
        ) from None
    readings: list[list[Rule]] = []
    for alt in CollapseAmbiguities().transform(tree)[:64]:
        try:
            readings.append(_rules_of(alt, words, offsets, notes, meta))
        except Unreadable as exc:
            readings.append([])
            last_error = exc
    good = [r for r in readings if r]
    if not good:
        raise last_error
    dumps = {json.dumps([r.model_dump(mode="json") for r in rs], sort_keys=True) for rs in good}
    if len(dumps) > 1:
        raise Unreadable(
            "The rule can be read in more than one way: "
            + " / ".join("; ".join(r.interpretation for r in rs) for rs in good[:3]),
            "Split it into shorter rules, one relation each.",
        )
    return good[0]


def _rules_of(
    tree: Tree, words: list[Token], offsets: dict[int, int], notes: list[str], meta: dict[str, Any]
) -> list[Rule]:
    out: list[Rule] = []
    prev_subj: list[Token] = []
    span_start = 0
    for clause in tree.children:
        if not isinstance(clause, Tree) or clause.data == "conj":
            continue
        p = Parts(alt=str(clause.data), notes=list(notes), hand=meta["hand"])
        p.tokens = [
            words[offsets[lt.start_pos]] for lt in clause.scan_values(lambda v: isinstance(v, LarkToken))
        ]
        span = (span_start, p.tokens[-1].end if p.tokens else span_start)
        span_start = span[1]
        for sub in clause.iter_subtrees():
            if sub.data in ("subj", "tgt", "onesubj"):
                toks = [
                    words[offsets[lt.start_pos]] for lt in sub.scan_values(lambda v: isinstance(v, LarkToken))
                ]
                (p.tgt if sub.data == "tgt" else p.subj).extend(k for k in toks if k.cat == "OBJ")
        implicit = not p.subj and p.alt != "count"
        if implicit and prev_subj:
            p.subj, implicit = list(prev_subj), False
        fields = relations.READERS[p.alt](p)
        if implicit and not (fields.get("subject") and fields["subject"] != MUG and p.tgt):
            p.notes.append("the rule names no object to place: mugs assumed")
        prev_subj = p.subj or prev_subj
        sev = meta["severity"] or _severity_words([k for k in meta["toks"] if span[0] <= k.start < span[1]])
        out.append(_rule(fields, p.notes, {**meta, "severity": sev}))
    return out


def _rule(fields: dict[str, Any], notes: list[str], meta: dict[str, Any]) -> Rule:
    fields = dict(fields)
    reason = fields.pop("reason", None)
    checkable = fields.pop("checkable", True)
    return Rule(
        text=meta["text"],
        severity=meta["severity"],
        context=meta["context"],
        notes=list(dict.fromkeys(notes)),
        checkable=checkable,
        reason=reason,
        **fields,
    )


def _not_checkable(words: list[Token], unseen: list[Token], notes: list[str], meta: dict[str, Any]) -> Rule:
    objs = [k for k in words if k.cat == "OBJ"]
    mugs = [k for k in objs if is_mugish(selector([k]))]
    about_mug = any("word" not in k.extra for k in unseen)  # a handle, a lid, a material: the mug's own
    subj: Selector = MUG if (about_mug and not mugs) or not objs else selector(mugs[:1] or objs[:1])
    reasons = list(dict.fromkeys(str(k.value) for k in unseen))
    if not unseen:
        reasons.append(
            "the dominant hand is not known; say 'position mugs on the left side' for a right-handed user "
            "(or 'on the right side' for a left-handed one)"
        )
    sev = meta["severity"] or _severity_words(meta["toks"])
    return _rule(
        dict(subject=subj, target=None, relation="other", checkable=False, reason="; ".join(reasons)),
        notes,
        {**meta, "severity": sev},
    )


def _severity_prefix(t: str) -> tuple[str | None, str]:
    m = _SEVERITY_PREFIX.match(t)
    if not m:
        return None, t
    return _SEV_MAP.get(m.group("s"), "info"), t[m.end() :]


def _severity_words(toks: list[Token]) -> str:
    if any(k.cat == "FILL" and k.value == "critical" for k in toks) or any(
        k.cat in ("NEG", "MIN", "MAX") and _CRITICAL_NEG.match(k.text) for k in toks
    ):
        return "critical"
    if any(k.cat == "FILL" and k.value == "info" for k in toks):
        return "info"
    return "warning"


def _context(t: str) -> tuple[str | None, str]:
    m = V.CONTEXT.match(t)
    if m:
        return _ctx_name(m.group("ctx")), t[m.end() :]
    m = V.CONTEXT_INLINE.search(t)
    if m:
        return _ctx_name(m.group("ctx")), (t[: m.start()] + t[m.end() :]).strip()
    return None, t


def _ctx_name(raw: str) -> str:
    word = raw.split()[0]
    return {"meeting": "meetings", "meetings": "meetings", "conference": "meetings"}.get(
        word, f"{word} settings"
    )


def crosscheck(rule: Rule, text: str) -> Rule:
    """Check a rule that came from elsewhere (a language model) against the words of `text`.

    The same discipline as the grammar: a distance must be one the text states (or a documented
    default, flagged `defaulted`); things the lexicon sees in the text that no box can judge make
    the rule not checkable; objects the rule names must be ones the text mentions, unless the text
    has words the lexicon does not know (then the rule says which objects the model chose).
    """
    t = normalise(text)
    lengths = [q.cm for q in find_quantities(t)]
    mentioned: set[str] = set()
    unseen: list[str] = []
    for m in V.find_terms(t):
        mentioned |= m.term.labels
        if m.term.kind == "unobservable":
            unseen.append(m.term.reason)
    for rx, cat, val in lexicon.COMPILED:
        if cat == "UNSEEN" and rx.search(t):
            unseen.append(str(val))
    if unseen and rule.checkable:
        raise Unreadable(
            "The rule mentions things no box can judge (" + "; ".join(dict.fromkeys(unseen)) + ")."
        )
    if rule.threshold_cm is not None and rule.relation != "align":
        stated = any(abs(rule.threshold_cm - cm) <= 0.01 + 0.005 * cm for cm in lengths)
        if not stated and not (rule.defaulted and rule.threshold_cm in DEFAULTS_CM):
            raise Unreadable(
                f"The answer uses {rule.threshold_cm:g} cm, a distance the rule does not state.",
                "State the distance in the rule, e.g. 'at least 20 cm'.",
            )
    named = set(rule.subject.labels) | (set(rule.target.labels) if rule.target else set())
    unknown_words = _unknown_words(t)
    if named - mentioned - {"cup"} and not unknown_words:
        raise Unreadable(f"The answer names {sorted(named - mentioned)}, which the rule does not mention.")
    if named - mentioned and unknown_words:
        rule = rule.model_copy(
            update={
                "notes": [
                    *rule.notes,
                    f"a language model read {', '.join(unknown_words)!s} as {sorted(named)}: confirm",
                ]
            }
        )
    return rule


def _unknown_words(t: str) -> list[str]:
    out: list[str] = []
    for _ in range(20):
        try:
            lexicon.tokenize(t)
            return out
        except UnknownWord as exc:
            out.append(exc.word)
            t = re.sub(rf"(?<![\w']){re.escape(exc.word)}(?![\w'])", " ", t, count=1)
    return out
