"""What a relation module provides, and the parts of a parsed clause it reads from.

A relation kind lives in one module under `mugpos.rules.relations`: the grammar productions that
read it (lark, over the lexicon's token categories), `read` (parsed parts -> Rule fields), and, for
checking and solving, `measure` on the table plane and `targets` for the solver (see `registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mugpos.rules import vocabulary as V
from mugpos.rules.lexicon import Token
from mugpos.rules.model import Selector
from mugpos.scene.labels import MUG_LABELS


class Unreadable(ValueError):
    """The clause parsed, but its parts do not make one rule (say why, with a hint)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class Parts:
    """The tokens of one clause, sorted by role. Filled by the grammar's tree walk."""

    alt: str
    tokens: list[Token] = field(default_factory=list)
    subj: list[Token] = field(default_factory=list)
    tgt: list[Token] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hand: Token | None = None

    def cats(self, *cats: str) -> list[Token]:
        return [t for t in self.tokens if t.cat in cats]

    def has(self, *cats: str) -> bool:
        return any(t.cat in cats for t in self.tokens)

    @property
    def negated(self) -> bool:
        return len(self.cats("NEG")) % 2 == 1

    def one(self, cat: str) -> Token | None:
        toks = self.cats(cat)
        return toks[0] if toks else None

    def length(self) -> Token | None:
        lens = self.cats("LEN")
        if not lens:
            return None
        first = lens[0]
        for q in lens[1:]:
            if abs(q.value - first.value) > 0.05 * max(first.value, q.value) + 0.01:
                raise Unreadable(
                    f"The rule gives two different distances ({first.value:g} cm and {q.value:g} cm).",
                    "Give one distance per rule; for a range, write two rules (at least ... / within ...).",
                )
        if "note" in first.extra:
            self.notes.append(first.extra["note"])
        return first

    def comparison(self) -> str | None:
        """'min' or 'max' from the comparatives (at least / within ...), None when there is none."""
        kinds = {t.cat for t in self.cats("MIN", "MAX")}
        if len(kinds) > 1:
            raise Unreadable(
                "The rule says both 'at least' and 'at most' (or similar).",
                "For a range, write two rules: 'at least 10 cm from X' and 'within 30 cm of X'.",
            )
        if not kinds:
            return None
        return "min" if kinds == {"MIN"} else "max"


def selector(toks: list[Token]) -> Selector:
    """The union of the things named (OBJ tokens)."""
    terms: list[V.Term] = [t.value for t in toks]
    if any(t.kind == "any" for t in terms):
        return Selector(kind="any", word="other objects")
    labels: set[str] = set()
    for term in terms:
        labels |= term.labels
    words = list(dict.fromkeys(t.word for t in terms))
    return Selector(kind="objects", labels=sorted(labels), word=" or ".join(words))


MUG = Selector(kind="objects", labels=sorted(MUG_LABELS), word="mug")


def is_mugish(sel: Selector | None) -> bool:
    return sel is not None and sel.kind == "objects" and bool(set(sel.labels) & MUG_LABELS)


def flip(pol: str, negated: bool) -> str:
    return pol if not negated else ("max" if pol == "min" else "min")


Fields = dict[str, Any]
