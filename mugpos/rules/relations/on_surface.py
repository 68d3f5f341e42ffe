"""on_surface: the whole mug stands on a table.

Phrasings: "keep mugs on the table", "mugs must stay on the desk", "never off the desk".
"""

from __future__ import annotations

from mugpos.rules.relations.base import MUG, Fields, Parts, selector

KINDS = ("on_surface",)

GRAMMAR = r"""
onsurf: neg? subj? neg? (ON | OFF) SURF
"""


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    off = p.has("OFF")
    return dict(
        subject=subj,
        target={"kind": "surface", "word": "table"},
        relation="on_surface",
        negated=p.negated != off,
    )


READERS = {"onsurf": read}
