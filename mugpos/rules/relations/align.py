"""align: the mugs stand in one row (centres level) or one column.

Phrasings: "line up the mugs in a row", "align cups in a column within 1 cm", "keep mugs lined up".
"""

from __future__ import annotations

from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, selector

KINDS = ("align",)

GRAMMAR = r"""
align: ALIGN subj ALIGN? dist?
     | subj ALIGN ALIGN? dist?
"""


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    axes = {t.value for t in p.cats("ALIGN")}
    if (
        axes == {"row", "column"}
        and len(p.cats("ALIGN")) > 1
        and any(t.value == "column" for t in p.cats("ALIGN"))
    ):
        axes = {"column"}
    q = p.length()
    if p.comparison() == "min":
        raise Unreadable("An alignment takes a tolerance ('within 1 cm'), not a minimum.")
    fields = dict(subject=subj, target=None, relation="align", axis=axes.pop() if len(axes) == 1 else "row")
    if q is not None:
        fields["threshold_cm"] = q.value
    return fields


READERS = {"align": read}
