"""relative: a mug to the left or right of, in front of or behind another object.

Phrasings: "put the mug to the right of the laptop", "keep mugs behind the keyboard", "never place
cups in front of the laptop", "the laptop should be left of the mug" (read from the mug's side).
"""

from __future__ import annotations

from mugpos.rules.relations.base import MUG, Fields, Parts, is_mugish, selector

KINDS = ("relative",)

GRAMMAR = r"""
rel: neg? subj? neg? DIR tgt
"""

_OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "in_front_of": "behind", "behind": "in_front_of"}


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    tgt = selector(p.tgt)
    d = p.one("DIR")
    assert d is not None
    direction = d.value
    if not is_mugish(subj) and is_mugish(tgt):
        subj, tgt, direction = tgt, subj, _OPPOSITE[direction]
    return dict(subject=subj, target=tgt, relation="relative", direction=direction, negated=p.negated)


READERS = {"rel": read}
