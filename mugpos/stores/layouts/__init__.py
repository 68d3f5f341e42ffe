"""The memory of layouts: what each analysed desk looked like, searchable by image and by geometry.

A stored layout carries the CLIP image embedding and a geometric `layout_vector` (where each kind of
object sits on the surface), so "have we seen a desk like this?" works across photos of different
sizes. Split by concern:

- `records`: the layout vector, `LayoutRecord` / `LayoutFilters` / `LayoutMatch`, the `LayoutStore`
  interface and the hybrid score both stores rank by;
- `embedded` (+ `ann`): files in the data directory, exact numpy search, usearch HNSW candidates
  once the collection is large; no server. The default;
- `mongo`: MongoDB with Atlas Vector Search, an exact fallback on servers without it.

`open_layout_store` picks one from the settings; everything is re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from mugpos.errors import ConfigError
from mugpos.stores.health import open_with_fallback
from mugpos.stores.layouts.ann import ANN_MIN_CANDIDATES, ANN_OVERSAMPLE, ANN_THRESHOLD
from mugpos.stores.layouts.embedded import EmbeddedLayoutStore
from mugpos.stores.layouts.mongo import (
    FILTER_FIELDS,
    NO_VECTOR_SEARCH,
    VECTOR_INDEX_NAME,
    MongoLayoutStore,
    match_filter,
    vector_index_definition,
    vector_search_filter,
    vector_search_pipeline,
)
from mugpos.stores.layouts.records import (
    DEFAULT_IMAGE_WEIGHT,
    LAYOUT_DIM,
    LAYOUT_GRID,
    LAYOUT_GROUPS,
    LAYOUT_VERSION,
    LayoutFilters,
    LayoutMatch,
    LayoutRecord,
    LayoutStore,
    hybrid_scores,
    layout_vector,
)

if TYPE_CHECKING:
    from mugpos.settings import Settings


async def open_layout_store(settings: Settings) -> LayoutStore:
    """MongoDB when configured (the embedded store, degraded, if it is down and fallback is on)."""
    embedded_path = settings.data_dir / "layouts"
    if settings.layout_store != "mongodb":
        # loading a large store reads files: keep the event loop free while it does
        return await asyncio.to_thread(EmbeddedLayoutStore, embedded_path)
    if settings.mongodb_uri is None:
        raise ConfigError(
            "MUGPOS_LAYOUT_STORE=mongodb needs MUGPOS_MONGODB_URI",
            hint="set MUGPOS_MONGODB_URI (mongodb+srv://... or a gsm:// reference) or use the embedded store",
        )
    uri = settings.mongodb_uri.get_secret_value()

    async def mongo() -> LayoutStore:
        store = MongoLayoutStore(uri, settings.mongodb_db, timeout_s=settings.mongodb_timeout_s)
        try:
            return await store.open()
        except BaseException:
            with contextlib.suppress(Exception):
                await store.aclose()
            raise

    async def embedded(reason: str) -> LayoutStore:
        return await asyncio.to_thread(EmbeddedLayoutStore, embedded_path, degraded_reason=reason)

    return await open_with_fallback(
        mongo,
        embedded,
        allowed=settings.mongodb_fallback,
        fallback_name=f"the embedded store at {embedded_path}",
    )


__all__ = [
    "ANN_MIN_CANDIDATES",
    "ANN_OVERSAMPLE",
    "ANN_THRESHOLD",
    "DEFAULT_IMAGE_WEIGHT",
    "FILTER_FIELDS",
    "LAYOUT_DIM",
    "LAYOUT_GRID",
    "LAYOUT_GROUPS",
    "LAYOUT_VERSION",
    "NO_VECTOR_SEARCH",
    "VECTOR_INDEX_NAME",
    "EmbeddedLayoutStore",
    "LayoutFilters",
    "LayoutMatch",
    "LayoutRecord",
    "LayoutStore",
    "MongoLayoutStore",
    "hybrid_scores",
    "layout_vector",
    "match_filter",
    "open_layout_store",
    "vector_index_definition",
    "vector_search_filter",
    "vector_search_pipeline",
]
