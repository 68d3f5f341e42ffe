"""Layouts in files, searched in this process: the default store, no server needed.

Exact numpy search over L2-normalised float32 matrices; once the collection passes `ann_threshold`,
usearch HNSW indexes propose candidates that are then re-scored exactly (so top-1 stays exact).
Several processes may share the folder: writers take an flock and read what others appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mugpos.errors import BackendError, ConfigError, MugposError
from mugpos.stores.health import ComponentHealth
from mugpos.stores.layouts.ann import ANN_THRESHOLD, AnnIndexes, Rows
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

log = logging.getLogger("mugpos.stores")

_FORMAT = 1


def _epoch(dt: datetime) -> float:
    """Seconds since 1970 for a datetime; a naive one is taken as UTC (as LayoutRecord does)."""
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()


class EmbeddedLayoutStore:
    """File-backed layouts in one folder; safe for several processes sharing the folder.

    Files: `index.jsonl` (one small line per row: id, time, labels, flags, where the record is; the
    line is the commit marker), `records.jsonl` (the records without their vectors),
    `embeddings.f32` / `layouts.f32` (raw float32 rows at fixed positions, L2-normalised),
    `meta.json`, and once the collection passes `ann_threshold`, usearch HNSW indexes
    (`ann-*.usearch`) saved on close. Writers take an flock and first read what other processes
    appended; readers pick up new rows by the index file's size. Putting an existing analysis id
    replaces it (last write wins).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        ann_threshold: int = ANN_THRESHOLD,
        image_weight: float = DEFAULT_IMAGE_WEIGHT,
        degraded_reason: str | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.image_weight = image_weight
        self.degraded_reason = degraded_reason
        self._lock = threading.RLock()
        self._ann = AnnIndexes(self.path, ann_threshold)
        self._last_mode: str | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            meta = self._read_meta()
        except OSError as exc:
            raise ConfigError(
                f"cannot use the layout folder {self.path}: {exc.strerror or exc}",
                hint="set MUGPOS_DATA_DIR to a writable folder",
            ) from exc
        self._st = Rows(meta.get("embedding_dim"), int(meta.get("layout_dim", LAYOUT_DIM)))
        self._index_end = 0
        with self._lock:
            self._sync(index=False)  # the saved ANN index is loaded, not rebuilt, just below
            self._ann.load(self._st)

    @property
    def ann_threshold(self) -> int:
        return self._ann.threshold

    # --- files ------------------------------------------------------------------------------
    @property
    def _index_file(self) -> Path:
        return self.path / "index.jsonl"

    @property
    def _records_file(self) -> Path:
        return self.path / "records.jsonl"

    def _read_meta(self) -> dict[str, Any]:
        p = self.path / "meta.json"
        if not p.exists():
            meta = {"format": _FORMAT, "embedding_dim": None, "layout_dim": LAYOUT_DIM}
            self._write_json(p, meta)
            return meta
        meta = json.loads(p.read_text())
        if meta.get("format") != _FORMAT:
            raise ConfigError(
                f"layout store {self.path} has format {meta.get('format')}, expected {_FORMAT}",
                hint="point MUGPOS_DATA_DIR at a fresh folder",
            )
        return meta

    @staticmethod
    def _write_json(p: Path, obj: Any) -> None:
        tmp = p.with_suffix(p.suffix + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(obj))
        os.replace(tmp, p)

    @contextlib.contextmanager
    def _flock(self) -> Any:
        import fcntl

        with open(self.path / "lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _sync(self, *, index: bool = True) -> None:
        """Read index lines appended since we last looked (by us at startup, or by other processes)."""
        st = self._st
        try:
            size = self._index_file.stat().st_size
        except FileNotFoundError:
            return
        if size <= self._index_end:
            return
        if st.emb_dim is None:
            meta = self._read_meta()
            if meta.get("embedding_dim"):
                st.set_emb_dim(int(meta["embedding_dim"]))
        with open(self._index_file, "rb") as fh:
            fh.seek(self._index_end)
            chunk = fh.read(size - self._index_end)
        complete = chunk.rfind(b"\n") + 1
        lines = chunk[:complete].splitlines()
        if not lines:
            return
        start = st.n
        st.reserve(start + len(lines))
        for line in lines:
            entry = json.loads(line)
            row = entry["row"]
            if row != st.n:
                raise BackendError(
                    f"layout store {self.path} is inconsistent (row {row}, expected {st.n})",
                    hint="restore the folder from a backup or move it away to start fresh",
                )
            self._add_row_meta(entry)
        self._index_end += complete
        self._load_vectors(start, st.n)
        if index:
            self._ann.add(st, start, st.n)

    def _add_row_meta(self, entry: dict[str, Any]) -> None:
        st = self._st
        row = st.n
        aid = entry["id"]
        old = st.id_row.get(aid)
        if old is not None:
            st.alive[old] = False
        st.id_row[aid] = row
        st.ids.append(aid)
        st.rec_off.append(entry["off"])
        st.rec_len.append(entry["len"])
        st.alive[row] = True
        st.has_emb[row] = entry["emb"] == "matrix"
        st.created[row] = entry["t"]
        st.viol[row] = entry["v"]
        for label in entry["labels"]:
            st.label_rows.setdefault(label, []).append(row)
        st.n += 1

    def _load_vectors(self, start: int, stop: int) -> None:
        st = self._st
        count = stop - start
        if count <= 0:
            return
        for name, dim, target in (
            ("layouts.f32", st.lay_dim, st.lay),
            ("embeddings.f32", st.emb_dim, st.emb),
        ):
            if not dim:
                continue
            p = self.path / name
            data = (
                np.fromfile(p, dtype=np.float32, count=count * dim, offset=start * dim * 4)
                if p.exists()
                else None
            )
            if data is None or data.size < count * dim:
                got = 0 if data is None else data.size // dim
                data = np.concatenate([data if data is not None else [], np.zeros((count - got) * dim)])
            target[start:stop] = np.asarray(data, dtype=np.float32).reshape(count, dim)

    # --- writes ---------------------------------------------------------------------------
    async def put(self, record: LayoutRecord) -> None:
        await asyncio.to_thread(self._put_many_sync, [record])

    async def put_many(self, records: Iterable[LayoutRecord]) -> None:
        """Bulk insert (imports, benchmarks): one lock, one write per file."""
        await asyncio.to_thread(self._put_many_sync, list(records))

    def _put_many_sync(self, records: list[LayoutRecord]) -> None:
        if not records:
            return
        with self._lock, self._flock():
            self._sync()
            st = self._st
            if st.emb_dim is None:
                dim = next((len(r.embedding) for r in records if r.embedding), None)
                if dim:
                    st.set_emb_dim(dim)
                    self._write_json(
                        self.path / "meta.json",
                        {"format": _FORMAT, "embedding_dim": dim, "layout_dim": st.lay_dim},
                    )
            first = st.n
            lay = np.zeros((len(records), st.lay_dim), dtype=np.float32)
            emb = np.zeros((len(records), st.emb_dim or 0), dtype=np.float32)
            rec_lines: list[bytes] = []
            modes: list[str] = []
            for i, rec in enumerate(records):
                if len(rec.layout_vector) != st.lay_dim:
                    raise MugposError(
                        f"layout vector has {len(rec.layout_vector)} numbers, the store uses {st.lay_dim}",
                        code="bad_vector",
                        hint="compute it with mugpos.stores.layouts.layout_vector()",
                    )
                lay[i] = unit_vector(rec.layout_vector, "layout vector")
                exclude = {"layout_vector"}
                mode = "none"
                if rec.embedding:
                    if len(rec.embedding) == st.emb_dim:
                        emb[i] = unit_vector(rec.embedding, "embedding")
                        exclude.add("embedding")
                        mode = "matrix"
                    else:
                        mode = "inline"  # another CLIP model's size: kept, not image-searchable
                modes.append(mode)
                rec_lines.append(rec.model_dump_json(exclude=exclude).encode() + b"\n")
            # Vectors first, at their fixed positions; then the records; the index line commits.
            with open(self.path / "layouts.f32", "ab+") as fh:
                os.pwrite(fh.fileno(), lay.tobytes(), first * st.lay_dim * 4)
            if st.emb_dim:
                with open(self.path / "embeddings.f32", "ab+") as fh:
                    os.pwrite(fh.fileno(), emb.tobytes(), first * st.emb_dim * 4)
            with open(self._records_file, "ab") as fh:
                off = fh.seek(0, os.SEEK_END)
                fh.write(b"".join(rec_lines))
            index_lines = []
            entries = []
            for i, (rec, mode, line) in enumerate(zip(records, modes, rec_lines, strict=True)):
                entry = {
                    "row": first + i,
                    "id": rec.analysis_id,
                    "t": _epoch(rec.created_at),
                    "v": rec.has_violations,
                    "labels": rec.labels,
                    "emb": mode,
                    "off": off,
                    "len": len(line),
                }
                off += len(line)
                entries.append(entry)
                index_lines.append(json.dumps(entry).encode() + b"\n")
            with open(self._index_file, "ab+") as fh:
                end = fh.seek(0, os.SEEK_END)
                if end != self._index_end:  # a torn line from a crash: cut it off
                    fh.truncate(self._index_end)
                fh.write(b"".join(index_lines))
            st.reserve(first + len(records))
            for entry in entries:
                self._add_row_meta(entry)
            st.lay[first : st.n] = lay
            if st.emb_dim:
                st.emb[first : st.n] = emb
            self._index_end += sum(len(x) for x in index_lines)
            self._ann.add(st, first, st.n)

    # --- reads ----------------------------------------------------------------------------------
    def _read_record(self, row: int) -> LayoutRecord:
        st = self._st
        with open(self._records_file, "rb") as fh:
            raw = os.pread(fh.fileno(), st.rec_len[row], st.rec_off[row])
        data = json.loads(raw)
        data["layout_vector"] = [round(float(x), 6) for x in st.lay[row]]
        if st.has_emb[row]:
            data["embedding"] = [float(x) for x in st.emb[row]]
        return LayoutRecord.model_validate(data)

    async def get(self, analysis_id: str) -> LayoutRecord | None:
        def run() -> LayoutRecord | None:
            with self._lock:
                self._sync()
                row = self._st.id_row.get(analysis_id)
                return None if row is None else self._read_record(row)

        return await asyncio.to_thread(run)

    async def count(self) -> int:
        def run() -> int:
            with self._lock:
                self._sync()
                return int(self._st.alive[: self._st.n].sum())

        return await asyncio.to_thread(run)

    def _mask(self, filters: LayoutFilters | None, exclude_id: str | None) -> np.ndarray:
        st = self._st
        mask = st.alive[: st.n].copy()
        if exclude_id is not None and (row := st.id_row.get(exclude_id)) is not None:
            mask[row] = False
        if filters is None:
            return mask
        for label in filters.labels_all:
            rows = st.label_rows.get(" ".join(label.lower().replace("_", " ").split()))
            has = np.zeros(st.n, dtype=bool)
            if rows:
                has[rows] = True
            mask &= has
        if filters.has_violations is not None:
            mask &= st.viol[: st.n] == filters.has_violations
        if filters.since is not None:
            mask &= st.created[: st.n] >= _epoch(filters.since)
        if filters.until is not None:
            mask &= st.created[: st.n] <= _epoch(filters.until)
        return mask

    async def search(
        self,
        *,
        embedding: list[float] | None = None,
        layout_vector: list[float] | None = None,
        k: int = 5,
        filters: LayoutFilters | None = None,
        exclude_id: str | None = None,
        exact: bool = False,
    ) -> list[LayoutMatch]:
        """Top-k by hybrid score; `exact=True` skips the ANN index (benchmarks, checks)."""
        check_query(embedding, layout_vector, k)
        return await asyncio.to_thread(
            self._search_sync, embedding, layout_vector, k, filters, exclude_id, use_ann=not exact
        )

    def _search_sync(
        self,
        embedding: list[float] | None,
        layout: list[float] | None,
        k: int,
        filters: LayoutFilters | None,
        exclude_id: str | None,
        *,
        use_ann: bool = True,
    ) -> list[LayoutMatch]:
        with self._lock:
            self._sync()
            st = self._st
            q_emb, q_lay = self._queries(embedding, layout)
            mask = self._mask(filters, exclude_id)
            q_emb_usable = q_emb is not None and st.emb_dim is not None
            query = q_emb if q_emb_usable else q_lay
            cand = None
            if use_ann and query is not None:
                cand = self._ann.candidates(st, query, q_emb_usable, mask, k)
            self._last_mode = "exact" if cand is None else "ann"
            if cand is None:
                cand = np.nonzero(mask)[0]
            return self._rank(cand, q_emb if q_emb_usable else None, q_emb is not None, q_lay, k)

    def _queries(
        self, embedding: list[float] | None, layout: list[float] | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The query vectors, normalised, with a clear error when a size does not match the store."""
        st = self._st
        q_emb = unit_vector(embedding, "embedding") if embedding is not None else None
        q_lay = unit_vector(layout, "layout vector") if layout is not None else None
        if q_emb is not None and st.emb_dim is not None and q_emb.size != st.emb_dim:
            raise ConfigError(
                f"the query embedding has {q_emb.size} dimensions, the stored layouts have {st.emb_dim}",
                hint="use the same CLIP model (MUGPOS_CLIP_MODEL) that stored the layouts",
            )
        if q_lay is not None and q_lay.size != st.lay_dim:
            raise MugposError(
                f"layout vector has {q_lay.size} numbers, the store uses {st.lay_dim}",
                code="bad_vector",
                hint="compute it with mugpos.stores.layouts.layout_vector()",
            )
        return q_emb, q_lay

    def _rank(
        self, cand: np.ndarray, q_emb: np.ndarray | None, by_image: bool, q_lay: np.ndarray | None, k: int
    ) -> list[LayoutMatch]:
        """Score the candidate rows exactly and return the top k (ties broken by row, i.e. age).

        `by_image` with no usable `q_emb` (the store holds no embeddings yet) still gives every
        row a missing image score, so records cannot rank by lacking one.
        """
        st = self._st
        if cand.size == 0:
            return []
        img = lay = None
        if by_image:
            img = np.full(cand.size, np.nan)
            if q_emb is not None:
                with_emb = st.has_emb[cand]
                img[with_emb] = st.emb[cand[with_emb]] @ q_emb
        if q_lay is not None:
            lay = (st.lay[cand] @ q_lay).astype(np.float64)
        scores, have = hybrid_scores(img, lay, self.image_weight)
        cand, scores = cand[have], scores[have]
        img = img[have] if img is not None else None
        lay = lay[have] if lay is not None else None
        if cand.size == 0:
            return []
        top = min(k, cand.size)
        part = np.argpartition(-scores, top - 1)[:top] if top < cand.size else np.arange(cand.size)
        order = part[np.lexsort((cand[part], -scores[part]))]
        return [
            LayoutMatch(
                record=self._read_record(int(cand[i])),
                score=round(float(scores[i]), 6),
                image_score=rounded_score(img[i]) if img is not None else None,
                layout_score=rounded_score(lay[i]) if lay is not None else None,
            )
            for i in order
        ]

    # --- status ----------------------------------------------------------------------------
    def status(self) -> ComponentHealth:
        st = self._st
        return ComponentHealth(
            name="layouts",
            backend="embedded",
            configured="mongodb" if self.degraded_reason else "embedded",
            degraded=self.degraded_reason is not None,
            reason=self.degraded_reason,
            details={
                "path": str(self.path),
                "count": st.alive_count,
                "rows": st.n,
                "embedding_dim": st.emb_dim,
                "layout_dim": st.lay_dim,
                "search": "ann (usearch HNSW) + exact rescoring" if self._ann.built else "exact (numpy)",
                "ann_threshold": self.ann_threshold,
                "ann_rows": self._ann.rows if self._ann.built else 0,
                "last_search": self._last_mode,
            },
        )

    async def aclose(self) -> None:
        def run() -> None:
            with self._lock:
                self._ann.save(self._flock, self._write_json)

        await asyncio.to_thread(run)
