"""Search stored layouts by photo, by stored analysis or by text."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mugpos.errors import ConfigError, MugposError
from mugpos.operations.core import Core, Progress, _first_error, _ms
from mugpos.results import LayoutHit, SearchResult
from mugpos.results.uris import layout_uri

if TYPE_CHECKING:
    from mugpos.stores.layouts import LayoutFilters


class SearchOps(Core):
    async def search(
        self,
        *,
        image: str | None = None,
        analysis_id: str | None = None,
        text: str | None = None,
        k: int = 5,
        filters: LayoutFilters | dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> SearchResult:
        from mugpos.stores.layouts import LayoutFilters, layout_vector

        if sum(x is not None for x in (image, analysis_id, text)) != 1:
            raise MugposError(
                "give exactly one of image, analysis_id or text",
                code="bad_query",
                hint="search_similar_layouts(text='laptop with a mug on the right')",
            )
        t0 = time.perf_counter()
        flt = filters if isinstance(filters, LayoutFilters) or filters is None else _filters(filters)
        if text is not None and (why := self.engine.embedder_unavailable()) is not None:
            raise ConfigError(
                f"search by text needs the CLIP embedder, which is {why}",
                hint="search by image or analysis_id instead (layouts are compared by arrangement too), "
                "or enable CLIP: MUGPOS_EMBEDDER=clip with its weights available",
            )
        await (await self._keeping()).drain()  # analyses answered a moment ago are searchable
        layouts = await self._layout_store()
        embedding = lvec = None
        exclude = None
        query: dict[str, Any] = {"k": k}
        if text is not None:
            query["text"] = text
            embedding = await self.engine.embed_text(text)
        elif analysis_id is not None:
            query["analysis_id"] = analysis_id
            record = await self._record(analysis_id)
            embedding, lvec, exclude = record.embedding, record.layout_vector, analysis_id
        else:
            assert image is not None
            query["image"] = image if len(image) < 200 else image[:40] + "..."
            img = await self.load_image(image)
            analysis = await self.engine.analyze(img, progress=progress)
            embedding, lvec = analysis.embedding, layout_vector(analysis.scene, analysis.scale)
        if embedding is None and lvec is None:
            raise MugposError(
                "nothing to search with: the image embedder is disabled",
                code="search_unavailable",
                hint="enable MUGPOS_EMBEDDER=clip",
            )
        matches = await layouts.search(
            embedding=embedding, layout_vector=lvec, k=k * 3, filters=flt, exclude_id=exclude
        )
        matches = _one_per_photo(matches)[:k]
        hits = [
            LayoutHit(
                analysis_id=m.record.analysis_id,
                score=round(m.score, 4),
                image_score=None if m.image_score is None else round(m.image_score, 4),
                layout_score=None if m.layout_score is None else round(m.layout_score, 4),
                created_at=m.record.created_at,
                summary=m.record.summary,
                labels=m.record.labels,
                has_violations=m.record.has_violations,
                uri=layout_uri(m.record.analysis_id),
            )
            for m in matches
        ]
        return SearchResult(
            query=query,
            results=hits,
            total_layouts=await layouts.count(),
            backend=layouts.status().backend,
            took_ms=_ms(t0),
        )


def _filters(raw: dict[str, Any]) -> LayoutFilters:
    """Validate search filters; an unknown key is an error naming the known ones, never ignored."""
    from mugpos.stores.layouts import LayoutFilters

    known = ", ".join(LayoutFilters.model_fields)
    if not isinstance(raw, dict):
        raise MugposError("filters must be an object", code="bad_filters", hint=f"keys: {known}")
    unknown = [k for k in raw if k not in LayoutFilters.model_fields]
    if unknown:
        raise MugposError(
            f"unknown filter key {', '.join(map(repr, unknown))}",
            code="bad_filters",
            hint=f"filters take: {known}, e.g. {{'labels_all': ['laptop'], 'has_violations': false}}",
        )
    try:
        return LayoutFilters.model_validate(raw)
    except Exception as exc:
        raise MugposError(
            f"bad filters: {_first_error(exc)}", code="bad_filters", hint=f"keys: {known}"
        ) from None


def _one_per_photo(matches: list[Any]) -> list[Any]:
    """The same photo analysed twice is one layout to a person: keep its best-scoring record."""
    seen: set[str] = set()
    out = []
    for m in matches:  # best first
        sha = m.record.image_sha256
        if sha is not None and sha in seen:
            continue
        if sha is not None:
            seen.add(sha)
        out.append(m)
    return out
