"""side: a half, a corner or the centre of the table (or of the image), the whole footprint in it.

Phrasings: "on the right side of the workspace", "toward the back of the table", "in the back-left
corner", "in the centre of the desk", "on the left half of the image", "never on the left side",
"I'm right-handed: mugs on my non-dominant side", "to the left of me".
"""

from __future__ import annotations

from mugpos.rules.relations.base import MUG, Fields, Parts, Unreadable, selector

KINDS = ("side",)

GRAMMAR = r"""
side: neg? subj? neg? (ON | FROM)? SIDE (FROM frame)?
    | neg? subj? neg? DIR (frame | PERSON)
    | neg? subj? neg? ON? frame FROM? SIDE
    | neg? subj? neg? ON? DOMSIDE
frame: SURF | IMG
"""

_DIR_REGION = {"left_of": "left", "right_of": "right", "in_front_of": "front", "behind": "back"}


def read(p: Parts) -> Fields:
    subj = selector(p.subj) if p.subj else MUG
    frame = "image" if p.has("IMG") else "surface"
    dom = p.one("DOMSIDE")
    if dom is not None:
        hand = p.hand
        if hand is None:
            return dict(
                subject=subj, target=None, relation="side", checkable=False,
                reason="the dominant hand is not known; say 'position mugs on the left side' for a "
                "right-handed user (or 'on the right side' for a left-handed one)",
            )  # fmt: skip
        other = {"right": "left", "left": "right"}
        side = other[hand.value] if dom.value == "non-dominant" else hand.value
        p.notes.append(f"{hand.value}-handed user: the {dom.value} side is the {side}")
        region = side
    elif p.has("DIR"):
        d = p.one("DIR")
        assert d is not None
        region = _DIR_REGION[d.value]
        if p.has("PERSON"):
            p.notes.append("the person is taken to sit at the front edge, facing the camera's way")
    else:
        s = p.one("SIDE")
        if s is None:
            raise Unreadable("The rule names no side.")
        region = s.value
    target = {"kind": frame, "word": "image" if frame == "image" else "surface"}
    return dict(subject=subj, target=target, relation="side", region=region, frame=frame, negated=p.negated)


READERS = {"side": read}
