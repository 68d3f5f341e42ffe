"""The embedded layout store's in-memory rows and its approximate-nearest-neighbour indexes.

`Rows` holds what the store keeps per row (small columns and the two float32 matrices); `AnnIndexes`
holds two usearch HNSW indexes (image embeddings, layout vectors) keyed by row number, built once
the store passes a size threshold. The ANN only proposes candidates: the store re-scores them
exactly, so the ranking it returns is the exact one whenever the true top-k are among them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mugpos.stores")

ANN_THRESHOLD = 20_000
ANN_OVERSAMPLE = 20
ANN_MIN_CANDIDATES = 500  # re-scored exactly; more candidates cost little and keep top-1 exact
# usearch 2.26's multi-threaded inserts now and then leave a row no search can reach: of 60 builds
# of the same 3000 random 64-d rows on two threads, 3 lost one (its exact twin missed by searches
# asking for 100 or 400 candidates); on one thread none did, and the graph is the same on every
# run. A build costs ~2.5x longer on two cores (20k x 512: 29 s against 11.5 s), and is rare:
# crossing the threshold, or a stale index on open; single puts add a row or a few.
INSERT_THREADS = 1


class Rows:
    """Everything the embedded store keeps in memory: small per-row columns and the two matrices."""

    def __init__(self, emb_dim: int | None, lay_dim: int) -> None:
        self.n = 0
        self.cap = 0
        self.emb_dim = emb_dim
        self.lay_dim = lay_dim
        self.ids: list[str] = []
        self.rec_off: list[int] = []
        self.rec_len: list[int] = []
        self.id_row: dict[str, int] = {}
        self.label_rows: dict[str, list[int]] = {}
        self.alive = np.zeros(0, dtype=bool)
        self.has_emb = np.zeros(0, dtype=bool)
        self.created = np.zeros(0, dtype=np.float64)
        self.viol = np.zeros(0, dtype=bool)
        self.emb = np.zeros((0, emb_dim or 0), dtype=np.float32)
        self.lay = np.zeros((0, lay_dim), dtype=np.float32)

    @property
    def alive_count(self) -> int:
        return int(self.alive[: self.n].sum())

    def reserve(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = max(n, self.cap * 2, 1024)

        def grow(a: np.ndarray) -> np.ndarray:
            out = np.zeros((cap, *a.shape[1:]), dtype=a.dtype)
            out[: self.n] = a[: self.n]
            return out

        self.alive, self.has_emb, self.created, self.viol = (
            grow(self.alive),
            grow(self.has_emb),
            grow(self.created),
            grow(self.viol),
        )
        self.emb = grow(self.emb) if self.emb_dim else np.zeros((cap, 0), dtype=np.float32)
        self.lay = grow(self.lay)
        self.cap = cap

    def set_emb_dim(self, dim: int) -> None:
        self.emb_dim = dim
        self.emb = np.zeros((self.cap, dim), dtype=np.float32)


def _new_index(dim: int) -> Any:
    from usearch.index import Index

    return Index(
        ndim=dim, metric="cos", dtype="f32", connectivity=16, expansion_add=128, expansion_search=256
    )


class AnnIndexes:
    """usearch HNSW indexes over the rows, saved beside the store's files (`ann-*.usearch`)."""

    def __init__(self, folder: Path, threshold: int = ANN_THRESHOLD) -> None:
        self.folder = folder
        self.threshold = threshold
        self.emb: Any = None
        self.lay: Any = None
        self.rows = 0  # rows [0, rows) are in the indexes
        self.dirty = False

    @property
    def built(self) -> bool:
        return self.lay is not None

    def _files(self) -> tuple[Path, Path, Path]:
        f = self.folder
        return f / "ann-embedding.usearch", f / "ann-layout.usearch", f / "ann.json"

    def load(self, st: Rows) -> None:
        """Restore the saved indexes if they match the rows, else build them (past the threshold)."""
        emb_p, lay_p, meta_p = self._files()
        if meta_p.exists() and lay_p.exists():
            try:
                from usearch.index import Index

                rows = int(json.loads(meta_p.read_text())["rows"])
                lay_idx = Index.restore(str(lay_p))
                emb_idx = Index.restore(str(emb_p)) if emb_p.exists() and st.emb_dim else None
                ok = rows <= st.n and lay_idx is not None and len(lay_idx) == rows
                if emb_idx is not None:
                    ok = ok and len(emb_idx) == int(st.has_emb[:rows].sum())
                if ok:
                    self.lay, self.emb, self.rows = lay_idx, emb_idx, rows
                    self.add(st, rows, st.n)
                    return
            except Exception as exc:  # a stale or torn index is rebuilt, never fatal
                log.warning("mugpos: rebuilding the layout ANN index (%s)", exc)
        self.add(st, 0, st.n)

    def add(self, st: Rows, start: int, stop: int) -> None:
        """Add rows to the indexes, building them once the store passes the threshold."""
        if self.lay is None:
            if st.alive_count < self.threshold:
                return
            self.lay = _new_index(st.lay_dim)
            self.emb = None
            self.rows = 0
            start = 0
        start = max(start, self.rows)
        if self.emb is None and st.emb_dim:
            # The embedding size became known after the layout index was built: catch up.
            self.emb = _new_index(st.emb_dim)
            done = np.nonzero(st.has_emb[:start])[0]
            if done.size:
                self.emb.add(done.astype(np.uint64), st.emb[done], threads=INSERT_THREADS)
        if stop <= start:
            return
        keys = np.arange(start, stop, dtype=np.uint64)
        self.lay.add(keys, st.lay[start:stop], threads=INSERT_THREADS)
        if self.emb is not None:
            sel = st.has_emb[start:stop]
            if sel.any():
                self.emb.add(keys[sel], st.emb[start:stop][sel], threads=INSERT_THREADS)
        self.rows = stop
        self.dirty = True

    def candidates(
        self, st: Rows, query: np.ndarray, by_image: bool, mask: np.ndarray, k: int
    ) -> np.ndarray | None:
        """Rows worth re-scoring exactly for this query, or None when the exact scan should run.

        The ANN answers only when the filtered set is larger than the threshold and the index
        proposes at least k rows; rows added since the index was last extended are always included.
        """
        index = self.emb if by_image else self.lay
        if index is None or int(mask.sum()) <= self.threshold:
            return None
        want = min(max(k * ANN_OVERSAMPLE, ANN_MIN_CANDIDATES), self.rows)
        keys = np.asarray(index.search(query, want).keys, dtype=np.int64)
        keys = keys[(keys >= 0) & (keys < st.n)]
        keys = keys[mask[keys]]
        tail = np.nonzero(mask[self.rows :])[0] + self.rows
        cand = np.unique(np.concatenate([keys, tail]))
        return cand if cand.size >= k else None

    def save(
        self,
        flock: Callable[[], AbstractContextManager[Any]],
        write_json: Callable[[Path, Any], None],
    ) -> None:
        """Write the indexes (atomically, under the store's file lock) if they changed."""
        if self.lay is None or not self.dirty:
            return
        emb_p, lay_p, meta_p = self._files()
        with flock():
            for idx, p in ((self.lay, lay_p), (self.emb, emb_p)):
                if idx is not None:
                    tmp = p.with_suffix(f".tmp{os.getpid()}")
                    idx.save(str(tmp))
                    os.replace(tmp, p)
            write_json(meta_p, {"rows": self.rows})
        self.dirty = False
