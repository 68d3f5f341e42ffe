"""Every word of a rule, accounted for: normalised text -> a list of tokens, or a refusal.

The lexicon maps phrases to token categories (the terminals of the grammar in `grammar.py`): things
(vocabulary terms), lengths and counts (units), comparatives, relation words, negation, and filler
that carries no meaning for placement ("please", "keep", "the"). A word the lexicon does not know
stops the parse; nothing is dropped. Longest phrase wins at each position, so "no closer than" is
one MIN token and never NEG + MAX.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from mugpos.rules import vocabulary as V
from mugpos.rules.units import find_quantities, normalise_numbers

HAND_WIDTH_CM = 10.16  # "a hand's width": the hand, a unit of 4 inches (still used for horses)


@dataclass
class Token:
    """One lexeme: its category (a grammar terminal), the text it covers and what it means."""

    cat: str
    text: str
    start: int
    end: int
    value: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


# (pattern, category, value). Category FILL is dropped before parsing; SEVF carries a severity.
_PHRASES: list[tuple[str, str, Any]] = [
    # comparatives, strongest first
    (r"no (?:less|closer|nearer) than|not (?:less|closer|nearer) than|never (?:less|closer|nearer) than"
     r"|at least|at minimum|or more|or further|or farther|(?:a |the )?minimum(?: (?:distance|gap|clearance|spacing|separation|buffer))?(?: of)?"
     r"|min\.?|minimal(?: distance)?(?: of)?", "MIN", "incl"),
    (r"more than|greater than|further than|farther than|further away than|farther away than|over|beyond"
     r"|upwards of|in excess of", "MIN", "strict"),
    (r"no (?:more|further|farther) than|not (?:more|further|farther) than|never (?:more|further|farther) than"
     r"|at most|at the most|or less|or closer|(?:a |the )?maximum(?: (?:distance|gap|separation))?(?: of)?|max\.?"
     r"|up to|within|inside|no greater than|not exceeding|not to exceed|no farther away than|no further away than", "MAX", "incl"),
    (r"less than|fewer than|closer than|nearer than|under|below", "MAX", "strict"),
    # relation words
    (r"(?:well |far )?away(?: from)?|far from|clear of|clear from|distant from|(?:a )?buffer(?: zone)?(?: of)?"
     r"|(?:a )?(?:distance|gap|clearance|separation|space|margin|room)(?: of)?|separated(?: by)?|separate(?: from)?"
     r"|keep-out zone|apart from", "AWAY", None),
    (r"near(?:by)?|close to|close by|close|next to|beside|alongside|by the side of|adjacent to|within reach of"
     r"|within arm's reach of|handy to|by", "NEAR", None),
    (r"apart|spaced(?: out)?|space(?: out)?|spread(?: out)?|out|distanced", "APART", None),
    (r"touch(?:es|ing)?|be in contact with|contact|bump(?:ing)? into|lean(?:ing)? (?:on|against)", "TOUCH", None),
    (r"group(?:ed|ing|s)?(?: up)?|cluster(?:ed|ing|s)?|together|gather(?:ed)?|consolidat(?:e|ed)|bunch(?:ed)?(?: up)?", "GROUP", None),
    (r"in (?:a |one )?(?:straight |neat |single )?(?:row|line)|lined up|line(?: them| it)? up|line|align(?:ed)?(?: horizontally)?|level with each other", "ALIGN", "row"),
    (r"in (?:a |one )?(?:straight |neat |single )?column|in single file|aligned vertically|front to back", "ALIGN", "column"),
    (r"hang(?:s|ing)? (?:over|off|past)|overhang(?:s|ing)?|stick(?:s|ing)? out (?:over|past)|fall(?:s|ing)? off|poke(?:s)? out over", "OVER", None),
    (r"off", "OFF", None),
    (r"on|onto|upon|on top of|atop", "ON", None),
    (r"between", "BETWEEN", None),
    (r"from|to|of|with", "FROM", None),
    (r"and|as well as|plus|and also|and then", "AND", None),
    (r"or|nor", "OR", None),
    (r"at a time|at once|at any (?:one )?time|allowed|permitted|in total|total|max(?:imum)? allowed|simultaneously", "ATATIME", None),
    (r"only|just|a maximum of|a max of|no more than|limit(?:ed)? to|up to a limit of", "ONLY", None),
    (r"each other|one another|themselves|other (?:mugs|cups|drinks|beverages)", "EACH", None),
    (r"me|you|the user|the person|my seat|the chair|whoever sits there", "PERSON", None),
    (r"dominant(?: hand)?(?: side)?|writing(?:-| )hand(?: side)?", "DOMSIDE", "dominant"),
    (r"non[- ]?dominant(?: hand)?(?: side)?|off[- ]hand(?: side)?|other hand(?: side)?|weak(?:er)? hand(?: side)?", "DOMSIDE", "non-dominant"),
    (r"(?:i am|i'm|im|the user is|user is|they are|he is|she is|for a|for)? ?right[- ]handed(?: user| person)?|(?:i am|i'm|im)? ?a right[- ]hander|righty", "HANDED", "right"),
    (r"(?:i am|i'm|im|the user is|user is|they are|he is|she is|for a|for)? ?left[- ]handed(?: user| person)?|(?:i am|i'm|im)? ?a left[- ]hander|lefty", "HANDED", "left"),
    # negation
    (r"never|not|no|don't|do not|dont|doesn't|does not|mustn't|must not|shouldn't|should not|cannot|can't|can not"
     r"|won't|will not|isn't|aren't|is not|are not|avoid(?:ing|s)?(?: having| putting| placing| leaving| setting)?"
     r"|prevent(?:ing|s)?|without|forbid(?:den)?|prohibit(?:ed)?|disallow(?:ed)?|refrain from|under no circumstances"
     r"|never ever|no way", "NEG", None),
    # vague amounts: refused, never turned into a number
    (r"some|somewhat|a bit|a little|roughly|about|around|approximately|approx|more or less|ish|-ish|sort of|kind of|fairly|reasonably|quite|pretty", "VAGUE", None),
    # unseeable properties: understood, not checkable
    (r"handles?|handle side|the handle|spouts?|logos?|labels?|prints?|facing|faces|face|pointing|points?|orient(?:ed|ation)?|rotat(?:e|ed|ion)|turn(?:ed)?", "UNSEEN", "which way a mug faces (its handle, its logo) cannot be judged from a box"),
    (r"hot|warm|steaming|heated", "HOTWORD", None),
    (r"cold|iced|temperature|full|empty|half[- ]full|filled|lids?|lidded|covered|uncovered|open|closed|spill[- ]?proof",
     "UNSEEN", "whether a drink is hot, full or lidded cannot be seen from a box"),
    (r"ceramic|glass material|porcelain|paper cups?|plastic|metal|stainless steel|material", "UNSEEN", "what a mug is made of cannot be judged from a box"),
    (r"clean|dirty|washed|used", "UNSEEN", "whether a mug is clean cannot be seen from a box"),
    (r"stable|unstable|stability|flat|level|uneven|wobbly|wobble|steady|sturdy|slanted|sloped|tilted|balanced|secure(?:ly)?", "UNSEEN", "whether a surface is stable or flat cannot be seen in a photo"),
    # severity words (covered; they set the severity)
    (r"must|always|required|mandatory|have to|has to|absolutely|at all times|critical(?:ly)?|need to|needs to", "FILL", "critical"),
    (r"prefer(?:ably|red|s)?|ideally|try to|if possible|when(?:ever)? possible|where possible|nice to|optional(?:ly)?"
     r"|consider|might|could|if you can|it would be nice if|it'd be nice if|i'd like|i would like|i prefer", "FILL", "info"),
    # filler: words that carry no meaning for where a thing stands
    (r"please|kindly|use|maintain(?:s|ed)?|provide|give|leave room|keep(?:s|ing)?|kept|put(?:s|ting)?|place(?:s|d)?|placing|position(?:s|ed|ing)?|set(?:s|ting)?|leave(?:s)?|leaving"
     r"|store(?:d)?|stand(?:s|ing)?|sit(?:s|ting)?|rest(?:s|ing)?|go(?:es)?|belong(?:s)?|live(?:s)?|be|been|being|is|are|was|were|'s|'re"
     r"|should|shall|will|would|can|may|need(?:s)?|want|make sure(?: that)?|ensure(?: that)?|ensures|check that|see that|make certain"
     r"|the|a|an|all|any|every|each|my|your|our|their|its|his|her|this|that|these|those|both|whole|so|arrange(?:d)?|up"
     r"|let|lets|allow|get(?:s)?|getting|stay(?:s)?|remain(?:s)?|there|have|has|having|move(?:d)?|bring|brought|end up"
     r"|i|we|you|they|it|them|he|she|someone|anyone|people's|of them|of it|toward(?:s)?|in|at|into|within the area of"
     r"|for (?:easy|quick) access|for easy reach|for convenience|so (?:they|it) (?:don't|doesn't) spill|to be safe|for safety|just in case|safely"
     r"|single|sole|one of|any of|every one of|when available|if available|whenever|every time|thank you|thanks|ok|okay|also|too"
     r"|the rule is|rule|rules|policy|here|on the desk side|side by side", "FILL", None),
]  # fmt: skip

_SIDE = re.compile(
    r"(?:(?:the |my |your )?(?P<w>left|right|front|back|rear|center|centre|middle|central|top|bottom)(?:[- ]hand)?"
    r"(?: (?:side|half|part|portion|area|section|end|third|zone|edge side|bit))?)"
)
_CORNER = re.compile(
    r"(?:(?:the )?(?P<v>front|back|rear|top|bottom|near|far)[- ]?(?P<h>left|right)|(?P<h2>left|right)[- ](?P<v2>front|back|rear|top|bottom))"
    r"(?: (?:hand )?(?:corner|side|area|quadrant|quarter|part))?"
)
_DIR = re.compile(
    r"(?:(?:to|on|at|toward|towards) (?:the )?)?(?P<side>left|right)(?:[- ]hand)?(?: (?:side|hand side))? of"
    r"|(?P<front>in front of|ahead of|before|in front)|(?P<behind>behind|in back of|at the back of|past|further back than)"
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
    "left": "left", "right": "right", "front": "front", "bottom": "front", "near": "front", "back": "back",
    "rear": "back", "top": "back", "far": "back", "center": "center", "centre": "center", "middle": "center",
    "central": "center",
}  # fmt: skip
_HAND = re.compile(
    r"(?:a |one |the )?hand(?:'s|s)? ?(?:width|breadth)|(?:a |one )?hand ?width|(?:a |one )?palm(?:'s)? width"
)


def _longest_first(pattern: str) -> str:
    """Top-level alternatives longest first, so 'on top of' is tried before 'on'."""
    parts, depth, cur = [], 0, ""
    for ch in pattern:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return "|".join(sorted(parts, key=len, reverse=True))


COMPILED = _COMPILED = [
    (re.compile(rf"(?:{_longest_first(p)})(?![\w'])"), cat, val) for p, cat, val in _PHRASES
]
_WORD = re.compile(r"[\w'][\w'-]*|[^\w\s]")
_SKIP = re.compile(r"[\s,:()\[\]\"!?*-]+|\.(?=\s|$)")
_SEP = re.compile(r";|\.\s+(?=\S)|\bthen\b")

# A few common misspellings in desk rules; anything else close to a known word is corrected only
# when one known word is clearly the closest (see `_correct`).
TYPOS: dict[str, str] = {
    "labtop": "laptop", "lap top": "laptop", "keybaord": "keyboard", "keybord": "keyboard", "mugz": "mugs",
    "centimeters": "centimeters", "infront": "in front", "awya": "away", "form": "from", "teh": "the",
    "wiht": "with", "inchs": "inches", "leats": "least", "lest": "least", "wihtin": "within", "dont": "don't", "shoudl": "should", "alway": "always",
}  # fmt: skip


class UnknownWord(ValueError):
    """A word no lexicon entry covers; the parse stops here."""

    def __init__(self, word: str, known: list[str]) -> None:
        super().__init__(word)
        self.word = word
        self.known = known


def normalise(text: str) -> str:
    """Lower case, one kind of quote, numbers as digits ("half a foot" -> "0.5 foot")."""
    t = text.lower().replace("’", "'").replace("‘", "'").replace("`", "'")
    t = re.sub(r"\s+", " ", t).strip().rstrip(".!")
    t = re.sub(r"\bone another\b", "each other", t)
    t = re.sub(r"\b(?:in one (?:place|spot|area|location|zone|group)|all together)\b", "together", t)
    t = normalise_numbers(t)
    t = re.sub(r"\b(?:a single|one single|one|a lone)\b(?=\s+(?!of\b|another\b)[a-z])", "1", t)
    return t


def _typo(t: str) -> tuple[str, list[str]]:
    notes = []
    for wrong, right in TYPOS.items():
        if wrong != right and re.search(rf"\b{re.escape(wrong)}\b", t):
            t = re.sub(rf"\b{re.escape(wrong)}\b", right, t)
            notes.append(f"read '{wrong}' as '{right}'")
    return t, notes


def _known_words() -> list[str]:
    """Single words the lexicon knows, for spelling suggestions."""
    words: set[str] = set()
    for p, _, _ in _PHRASES:
        words.update(w for w in re.findall(r"[a-z']{4,}", p.replace("(?:", " ")))
    for p, _ in V.TERMS:
        words.update(w for w in re.findall(r"[a-z']{4,}", p.replace("(?:", " ")))
    words.update(
        ["inches", "inch", "centimetres", "centimeters", "millimetres", "feet", "foot", "meters", "metres"]
    )
    return sorted(words)


KNOWN_WORDS = _known_words()


def _edits1(a: str, b: str) -> bool:
    """Whether b is one insertion, deletion, substitution or swap away from a."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _correct(word: str) -> str | None:
    """The one known word a misspelt word clearly means, or None."""
    if not word.isalpha() or len(word) < 3:
        return None
    near = [k for k in KNOWN_WORDS if _edits1(word, k)]
    if len(near) == 1:
        return near[0]
    if len(near) > 1 or len(word) < 5:
        return None
    close = difflib.get_close_matches(word, KNOWN_WORDS, n=2, cutoff=0.84)
    if not close:
        return None
    if len(close) == 2:
        r0 = difflib.SequenceMatcher(None, word, close[0]).ratio()
        r1 = difflib.SequenceMatcher(None, word, close[1]).ratio()
        if r0 - r1 < 0.05:
            return None
    return close[0]


def tokenize(text: str) -> tuple[list[Token], list[str]]:
    """Tokens for every word of an already normalised rule, and notes about corrections made.

    Raises `UnknownWord` at the first word nothing covers (after trying one spelling correction).
    """
    t, notes = _typo(text)
    for _ in range(4):
        try:
            return _scan(t), notes
        except UnknownWord as exc:
            fixed = _correct(exc.word)
            if fixed is None:
                raise
            t = re.sub(rf"\b{re.escape(exc.word)}\b", fixed, t)
            notes.append(f"read '{exc.word}' as '{fixed}'")
    return _scan(t), notes


def _scan(t: str) -> list[Token]:
    qs = {q.start: q for q in find_quantities(t)}
    out: list[Token] = []
    pos = 0
    n = len(t)
    while pos < n:
        m = _SEP.match(t, pos)
        if m:
            out.append(Token("SEP", m.group(0), pos, m.end()))
            pos = m.end()
            continue
        m = _SKIP.match(t, pos)
        if m and m.end() > pos:
            if "," in m.group(0):
                out.append(Token("COMMA", ",", pos, m.end()))
            pos = m.end()
            continue
        q = qs.get(pos)
        if q is not None:
            out.append(Token("LEN", t[q.start : q.end], q.start, q.end, q.cm, {"unit": q.unit}))
            pos = q.end
            continue
        tok = _longest(t, pos)
        if tok is None:
            w = _WORD.match(t, pos)
            word = w.group(0) if w else t[pos]
            raise UnknownWord(word, [])
        out.append(tok)
        pos = tok.end
    return out


def _longest(t: str, pos: int) -> Token | None:
    best: Token | None = None

    def offer(tok: Token) -> None:
        nonlocal best
        if tok.end > tok.start and (best is None or tok.end > best.end):
            best = tok

    if pos > 0 and (t[pos - 1].isalnum()):
        m = re.compile(r"'s?(?![\w])").match(t, pos)
        return Token("FILL", m.group(0), pos, m.end()) if m else None
    m = re.compile(r"\d+(?![\d.])").match(t, pos)
    if m:
        offer(Token("NUM", m.group(0), pos, m.end(), int(m.group(0))))
    m = _HAND.match(t, pos)
    if m and _ends_word(t, m.end()):
        offer(
            Token(
                "LEN",
                m.group(0),
                pos,
                m.end(),
                HAND_WIDTH_CM,
                {"unit": "hand", "note": "a hand's width is read as 4 in (10.16 cm)"},
            )
        )
    for rx, term in zip(V._COMPILED, V.TERMS, strict=True):
        m = rx.match(t, pos)
        if m and m.end() > pos:
            offer(_term_token(term[1], m.group(0), pos, m.end()))
    m = _CORNER.match(t, pos)
    if m and _ends_word(t, m.end()):
        v = _VERT[m.group("v") or m.group("v2")]
        offer(Token("SIDE", m.group(0), pos, m.end(), f"{v}-{m.group('h') or m.group('h2')}"))
    m = _DIR.match(t, pos)
    if m and _ends_word(t, m.end()):
        d = (
            "left_of"
            if m.group("side") == "left"
            else "right_of"
            if m.group("side")
            else "in_front_of"
            if m.group("front")
            else "behind"
        )
        offer(Token("DIR", m.group(0), pos, m.end(), d))
    m = _SIDE.match(t, pos)
    if m and _ends_word(t, m.end()):
        offer(Token("SIDE", m.group(0), pos, m.end(), _SIDE_WORD[m.group("w")]))
    for rx, cat, val in _COMPILED:
        m = rx.match(t, pos)
        if m and m.end() > pos:
            offer(Token(cat, m.group(0), pos, m.end(), val))
    return best


def _ends_word(t: str, end: int) -> bool:
    return end >= len(t) or not (t[end].isalnum() or t[end] == "'")


def _term_token(term: V.Term, text: str, start: int, end: int) -> Token:
    cat = {
        "objects": "OBJ", "any": "OBJ", "surface": "SURF", "edge": "EDGE", "image": "IMG",
        "each_other": "EACH", "unobservable": "UNSEEN", "zone": "ZONE",
    }[term.kind]  # fmt: skip
    if cat == "UNSEEN":
        return Token(cat, text, start, end, term.reason, {"word": term.word})
    if cat == "EDGE":
        m = re.search(r"\b(front|back|rear|near|far|left|right)\b", text)
        edges = (
            [{"rear": "back", "near": "front", "far": "back"}.get(m.group(1), m.group(1))]
            if m
            else ["left", "right", "back", "front"]
        )
        return Token(cat, text, start, end, edges)
    return Token(cat, text, start, end, term)
