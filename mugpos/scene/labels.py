"""COCO class names and the groups of them that mugpos cares about."""

from __future__ import annotations

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

MUG_LABELS: frozenset[str] = frozenset({"cup"})
DRINK_LABELS: frozenset[str] = frozenset({"cup", "bottle", "wine glass"})
ELECTRONICS_LABELS: frozenset[str] = frozenset({"laptop", "keyboard", "mouse", "cell phone", "tv", "remote"})
SURFACE_LABELS: frozenset[str] = frozenset({"dining table"})
# What stands on a table when it stands near one (never the floor's chairs, people or sofas): a
# table's detected side that such an object reaches past is not the table's edge.
TABLETOP_LABELS: frozenset[str] = frozenset(
    {
        *DRINK_LABELS,
        *(ELECTRONICS_LABELS - {"tv"}),
        *("book", "bowl", "vase", "scissors", "clock", "potted plant", "fork", "knife", "spoon"),
        *("pizza", "cake", "sandwich", "donut", "hot dog", "banana", "apple", "orange", "broccoli"),
        *("carrot", "teddy bear", "toothbrush", "hair drier"),
    }
)
# What rules talk about around a mug; the detector keeps these (and everything else it sees).
CONTEXT_LABELS: frozenset[str] = frozenset(
    {
        *DRINK_LABELS,
        *ELECTRONICS_LABELS,
        *SURFACE_LABELS,
        "book",
        "bowl",
        "clock",
        "vase",
        "scissors",
        "potted plant",
        "microwave",
        "oven",
        "toaster",
        "sink",
        "fork",
        "knife",
        "spoon",
    }
)


def slug(label: str) -> str:
    """`dining table` -> `dining-table`, the stem of object ids."""
    return "-".join(label.lower().split())
