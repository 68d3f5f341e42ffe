"""Per-stage timings of one analysis: the pipeline fills them, the results, `mugpos bench` and
`/metrics` read them from this one place."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Timings(BaseModel):
    """Milliseconds per stage; `cache` names the tier that answered, if any."""

    load_ms: float = 0.0
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    geometry_ms: float = 0.0
    rules_ms: float = 0.0
    annotate_ms: float = 0.0
    store_ms: float = 0.0
    total_ms: float = 0.0
    cache: Literal["l2", "l1"] | None = None
