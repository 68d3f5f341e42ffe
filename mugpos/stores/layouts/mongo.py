"""Layouts in MongoDB: Atlas Vector Search where the server has it, an exact fallback where it does not.

PyMongo's `AsyncMongoClient` (Motor reached end of life in May 2026), shared with the rule store
through `mugpos.stores.mongo`. The query builders (`vector_index_definition`,
`vector_search_pipeline`, `vector_search_filter`, `match_filter`) are pure functions, tested by the
shape of what they build, since no Atlas server runs in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mugpos.errors import BackendError
from mugpos.stores import mongo as mongo_clients
from mugpos.stores.health import ComponentHealth
from mugpos.stores.layouts.records import (
    DEFAULT_IMAGE_WEIGHT,
    LAYOUT_DIM,
    LayoutFilters,
    LayoutMatch,
    LayoutRecord,
    check_query,
    hybrid_scores,
    rounded_score,
    unit_vector,
)

VECTOR_INDEX_NAME = "mugpos_layouts_vector"
NO_VECTOR_SEARCH = "vector search unavailable on this server: exact fallback"
FILTER_FIELDS = ("labels", "has_violations", "created_at", "analysis_id")


def vector_index_definition(embedding_dim: int | None, layout_dim: int = LAYOUT_DIM) -> dict[str, Any]:
    """The Atlas Vector Search index (type "vectorSearch") over both vectors and the filter fields."""
    fields: list[dict[str, Any]] = []
    if embedding_dim:
        fields.append(
            {"type": "vector", "path": "embedding", "numDimensions": embedding_dim, "similarity": "cosine"}
        )
    fields.append(
        {"type": "vector", "path": "layout_vector", "numDimensions": layout_dim, "similarity": "cosine"}
    )
    fields.extend({"type": "filter", "path": f} for f in FILTER_FIELDS)
    return {"name": VECTOR_INDEX_NAME, "type": "vectorSearch", "definition": {"fields": fields}}


def vector_search_filter(filters: LayoutFilters | None, exclude_id: str | None) -> dict[str, Any]:
    """The pre-filter in the operators `$vectorSearch` accepts ($eq, $ne, $gte, $lte, $and)."""
    clauses: list[dict[str, Any]] = []
    if filters is not None:
        clauses.extend({"labels": {"$eq": label}} for label in filters.labels_all)
        if filters.has_violations is not None:
            clauses.append({"has_violations": {"$eq": filters.has_violations}})
        if filters.since is not None:
            clauses.append({"created_at": {"$gte": filters.since}})
        if filters.until is not None:
            clauses.append({"created_at": {"$lte": filters.until}})
    if exclude_id is not None:
        clauses.append({"analysis_id": {"$ne": exclude_id}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def match_filter(filters: LayoutFilters | None, exclude_id: str | None) -> dict[str, Any]:
    """The same filter as a plain `$match` for the exact fallback."""
    q: dict[str, Any] = {}
    if filters is not None:
        if filters.labels_all:
            q["labels"] = {"$all": list(filters.labels_all)}
        if filters.has_violations is not None:
            q["has_violations"] = filters.has_violations
        rng = {}
        if filters.since is not None:
            rng["$gte"] = filters.since
        if filters.until is not None:
            rng["$lte"] = filters.until
        if rng:
            q["created_at"] = rng
    if exclude_id is not None:
        q["analysis_id"] = {"$ne": exclude_id}
    return q


def vector_search_pipeline(
    *,
    path: str,
    query_vector: Sequence[float],
    k: int,
    filters: LayoutFilters | None = None,
    exclude_id: str | None = None,
    index: str = VECTOR_INDEX_NAME,
    oversample: int = 10,
) -> list[dict[str, Any]]:
    """`$vectorSearch` on one vector path; candidates are re-scored with the hybrid score in Python."""
    limit = min(max(k * oversample, k), 10_000)
    stage: dict[str, Any] = {
        "index": index,
        "path": path,
        "queryVector": [float(x) for x in query_vector],
        "numCandidates": min(max(limit * 10, 100), 10_000),
        "limit": limit,
    }
    flt = vector_search_filter(filters, exclude_id)
    if flt:
        stage["filter"] = flt
    return [
        {"$vectorSearch": stage},
        {"$project": {"_id": 0, "analysis_id": 1, "embedding": 1, "layout_vector": 1,
                      "vs_score": {"$meta": "vectorSearchScore"}}},
    ]  # fmt: skip


class MongoLayoutStore:
    """Layouts in MongoDB; `$vectorSearch` where the server has Atlas Search, else exact in Python."""

    def __init__(
        self,
        uri: str,
        db: str = "mugpos",
        *,
        collection: str = "layouts",
        timeout_s: float = 3.0,
        image_weight: float = DEFAULT_IMAGE_WEIGHT,
        fallback_limit: int = 50_000,
    ) -> None:
        self._client: Any = mongo_clients.acquire(uri, timeout_s=timeout_s)
        self._where = mongo_clients.redact_uri(uri)
        self._db_name = db
        self._col: Any = self._client[db][collection]
        self.collection = collection
        self.image_weight = image_weight
        self.fallback_limit = fallback_limit
        self.vector_search: bool | None = None
        self.capability: str = "not checked yet"
        self._index_dim: int | None = None
        self._index_tried = False
        self.last_error: str | None = None

    async def open(self) -> MongoLayoutStore:
        """Check the server answers, create the regular indexes and try the vector search index."""
        from pymongo.errors import PyMongoError

        try:
            await self._client.admin.command("ping")
            await self._col.create_index("analysis_id", unique=True)
            await self._col.create_index("created_at")
        except PyMongoError as exc:
            raise BackendError(
                f"MongoDB unreachable at {self._where}: {type(exc).__name__}",
                hint="check MUGPOS_MONGODB_URI and that the server is up",
            ) from exc
        existing = await self._col.find_one({"embedding": {"$ne": None}}, {"embedding": 1})
        dim = len(existing["embedding"]) if existing and existing.get("embedding") else None
        await self._ensure_vector_index(dim)
        return self

    async def _ensure_vector_index(self, embedding_dim: int | None) -> None:
        """createSearchIndexes once we know the embedding size; remember if the server cannot."""
        if self.vector_search is False or (self._index_tried and (self._index_dim or not embedding_dim)):
            return
        from pymongo.errors import OperationFailure, PyMongoError

        definition = vector_index_definition(embedding_dim)
        try:
            await self._client[self._db_name].command(
                {"createSearchIndexes": self.collection, "indexes": [definition]}
            )
            self.vector_search, self.capability = True, "atlas vector search"
        except OperationFailure as exc:
            if exc.code == 68 or "already exists" in str(exc).lower():
                self.vector_search, self.capability = True, "atlas vector search"
            else:
                self.vector_search, self.capability = False, NO_VECTOR_SEARCH
                self.last_error = f"createSearchIndexes: {exc}"[:300]
        except PyMongoError as exc:
            self.vector_search, self.capability = False, NO_VECTOR_SEARCH
            self.last_error = f"createSearchIndexes: {exc}"[:300]
        self._index_tried = True
        self._index_dim = embedding_dim
        if self.vector_search:
            await self._probe_vector_search()

    async def _probe_vector_search(self) -> None:
        """Some servers accept createSearchIndexes yet cannot run `$vectorSearch`: ask once."""
        from pymongo.errors import PyMongoError

        probe = vector_search_pipeline(path="layout_vector", query_vector=[1.0] * LAYOUT_DIM, k=1)
        try:
            await (await self._col.aggregate(probe)).to_list(None)
        except PyMongoError as exc:
            self.vector_search, self.capability = False, NO_VECTOR_SEARCH
            self.last_error = f"$vectorSearch: {exc}"[:300]

    async def put(self, record: LayoutRecord) -> None:
        doc = record.model_dump(mode="json")
        doc["created_at"] = record.created_at
        doc["layout_vector"] = [float(x) for x in unit_vector(record.layout_vector, "layout vector")]
        if record.embedding:
            doc["embedding"] = [float(x) for x in unit_vector(record.embedding, "embedding")]
            if not self._index_dim:
                await self._ensure_vector_index(len(record.embedding))
        try:
            await self._col.replace_one({"analysis_id": record.analysis_id}, doc, upsert=True)
        except Exception as exc:
            raise BackendError(
                f"could not store layout {record.analysis_id} in MongoDB: {type(exc).__name__}",
                hint="check the MongoDB server",
            ) from exc

    @staticmethod
    def _to_record(doc: dict[str, Any]) -> LayoutRecord:
        doc = {k: v for k, v in doc.items() if k != "_id"}
        return LayoutRecord.model_validate(doc)

    async def get(self, analysis_id: str) -> LayoutRecord | None:
        doc = await self._col.find_one({"analysis_id": analysis_id})
        return None if doc is None else self._to_record(doc)

    async def count(self) -> int:
        return int(await self._col.count_documents({}))

    async def search(
        self,
        *,
        embedding: list[float] | None = None,
        layout_vector: list[float] | None = None,
        k: int = 5,
        filters: LayoutFilters | None = None,
        exclude_id: str | None = None,
    ) -> list[LayoutMatch]:
        check_query(embedding, layout_vector, k)
        q_emb = unit_vector(embedding, "embedding") if embedding is not None else None
        q_lay = unit_vector(layout_vector, "layout vector") if layout_vector is not None else None
        docs = await self._candidates(q_emb, q_lay, k, filters, exclude_id)
        if not docs:
            return []
        img = _cosines(docs, "embedding", q_emb)
        lay = _cosines(docs, "layout_vector", q_lay)
        scores, have = hybrid_scores(img, lay, self.image_weight)
        ids = [d["analysis_id"] for d in docs]
        order = sorted((i for i in range(len(docs)) if have[i]), key=lambda i: (-scores[i], ids[i]))[:k]
        full = {
            d["analysis_id"]: d
            async for d in self._col.find({"analysis_id": {"$in": [ids[i] for i in order]}})
        }
        return [
            LayoutMatch(
                record=self._to_record(full[ids[i]]),
                score=round(float(scores[i]), 6),
                image_score=rounded_score(img[i]) if img is not None else None,
                layout_score=rounded_score(lay[i]) if lay is not None else None,
            )
            for i in order
            if ids[i] in full
        ]

    async def _candidates(
        self,
        q_emb: np.ndarray | None,
        q_lay: np.ndarray | None,
        k: int,
        filters: LayoutFilters | None,
        exclude_id: str | None,
    ) -> list[dict[str, Any]]:
        """Candidate ids and vectors: `$vectorSearch` where it runs, else every match of the filter."""
        from pymongo.errors import OperationFailure

        if self.vector_search:
            path, q = ("embedding", q_emb) if q_emb is not None else ("layout_vector", q_lay)
            assert q is not None  # check_query asked for at least one vector
            pipeline = vector_search_pipeline(
                path=path, query_vector=q.tolist(), k=k, filters=filters, exclude_id=exclude_id
            )
            try:
                return await (await self._col.aggregate(pipeline)).to_list(None)
            except OperationFailure as exc:
                self.vector_search, self.capability = False, NO_VECTOR_SEARCH
                self.last_error = f"$vectorSearch: {exc}"[:300]
        pipeline = [
            {"$match": match_filter(filters, exclude_id)},
            {"$sort": {"created_at": -1}},
            {"$limit": self.fallback_limit},
            {"$project": {"_id": 0, "analysis_id": 1, "embedding": 1, "layout_vector": 1}},
        ]
        return await (await self._col.aggregate(pipeline)).to_list(None)

    def status(self) -> ComponentHealth:
        """Healthy even without vector search: the exact fallback answers the same queries."""
        return ComponentHealth(
            name="layouts",
            backend="mongodb",
            details={
                "server": self._where,
                "database": self._db_name,
                "collection": self.collection,
                "vector_search": bool(self.vector_search),
                "capability": self.capability,
                "last_error": self.last_error,
            },
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await mongo_clients.release(client)


def _cosines(docs: list[dict[str, Any]], field: str, query: np.ndarray | None) -> np.ndarray | None:
    """Cosine of each document's vector with the query; NaN where a document lacks it or differs in size."""
    if query is None:
        return None
    what = "embedding" if field == "embedding" else "layout vector"
    return np.array(
        [
            float(np.dot(unit_vector(d[field], what), query))
            if d.get(field) and len(d[field]) == query.size
            else np.nan
            for d in docs
        ]
    )
