"""The memory of layouts: what each analysed desk looked like, searchable by image and by geometry.

A stored layout carries the CLIP image embedding and a geometric `layout_vector` (where each kind of
object sits on the surface), so "have we seen a desk like this?" works across photos of different
sizes. Two stores behind one `LayoutStore` interface:

- `EmbeddedLayoutStore`: files in the data directory, exact numpy search, a usearch HNSW index once
  the collection is large; no server. Default.
- `MongoLayoutStore`: PyMongo's `AsyncMongoClient` (Motor reached end of life in May 2026) with an
  Atlas Vector Search index and `$vectorSearch`; an exact fallback on servers without search.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mugpos.errors import BackendError, ConfigError, MugposError
from mugpos.scene.geometry import box_gap, surface_for
from mugpos.scene.labels import DRINK_LABELS, ELECTRONICS_LABELS, MUG_LABELS, SURFACE_LABELS
from mugpos.scene.model import Scale, Scene

if TYPE_CHECKING:
    from mugpos.settings import Settings

# --- the geometric descriptor -------------------------------------------------------------------

LAYOUT_GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("mug", MUG_LABELS),
    ("drinks", DRINK_LABELS - MUG_LABELS),
    ("laptop", frozenset({"laptop"})),
    ("keyboard", frozenset({"keyboard"})),
    ("electronics", ELECTRONICS_LABELS - {"laptop", "keyboard"}),
    ("book", frozenset({"book"})),
    ("dishes", frozenset({"bowl", "fork", "knife", "spoon"})),
)
LAYOUT_GRID = 4
LAYOUT_VERSION = 1
# per group: grid cells + a count; then three whole-scene features (other objects, mug-electronics
# proximity, mug-edge proximity)
LAYOUT_DIM = len(LAYOUT_GROUPS) * (LAYOUT_GRID * LAYOUT_GRID + 1) + 3
_GROUP_OF = {label: i for i, (_, labels) in enumerate(LAYOUT_GROUPS) for label in labels}
_GROUP_WEIGHTS = tuple(1.5 if name == "mug" else 1.0 for name, _ in LAYOUT_GROUPS)
_COUNT_WEIGHT = 0.5
_SCALAR_WEIGHT = 0.5


def layout_vector(scene: Scene, scale: Scale) -> list[float]:
    """A fixed-length, L2-normalised description of where things stand on the supporting surface.

    For each label group a 4x4 occupancy grid over the surface (the fraction of each cell its boxes
    cover, so the vector does not depend on image size; scaled to a fixed length per group, the mug
    group weighted 1.5), a squashed count, and three scene features:
    how many other objects, how close the nearest mug is to electronics and to an edge (in cm, so it
    uses the scale). An empty scene gives the zero vector.
    """
    g = LAYOUT_GRID
    groups = len(LAYOUT_GROUPS)
    grids = np.zeros((groups, g, g), dtype=np.float64)
    counts = np.zeros(groups, dtype=np.float64)
    others = 0
    surface = surface_for(scene).box
    sx1, sy1, sx2, sy2 = surface
    sw, sh = max(sx2 - sx1, 1e-9), max(sy2 - sy1, 1e-9)
    edges = np.linspace(0.0, 1.0, g + 1)
    for obj in scene.objects:
        if obj.label in SURFACE_LABELS:
            continue
        gi = _GROUP_OF.get(obj.label)
        if gi is None:
            others += 1
            continue
        counts[gi] += 1
        x1 = (max(obj.box[0], sx1) - sx1) / sw
        x2 = (min(obj.box[2], sx2) - sx1) / sw
        y1 = (max(obj.box[1], sy1) - sy1) / sh
        y2 = (min(obj.box[3], sy2) - sy1) / sh
        if x2 <= x1 or y2 <= y1:
            continue
        ox = np.clip(np.minimum(edges[1:], x2) - np.maximum(edges[:-1], x1), 0, None) * g
        oy = np.clip(np.minimum(edges[1:], y2) - np.maximum(edges[:-1], y1), 0, None) * g
        grids[gi] += np.outer(oy, ox)
    np.clip(grids, 0.0, 1.0, out=grids)
    count_feat = np.log1p(counts) / math.log(11.0) * _COUNT_WEIGHT

    mugs = scene.mugs
    electronics = scene.with_labels(ELECTRONICS_LABELS)
    near_electronics = 0.0
    near_edge = 0.0
    if mugs and electronics:
        gap_cm = min(scale.cm(box_gap(m.box, e.box)) for m in mugs for e in electronics)
        near_electronics = math.exp(-gap_cm / 20.0)
    if mugs:
        edge_cm = min(
            scale.cm(max(min(m.box[0] - sx1, sx2 - m.box[2], m.box[1] - sy1, sy2 - m.box[3]), 0.0))
            for m in mugs
        )
        near_edge = math.exp(-edge_cm / 10.0)
    scalars = np.array(
        [math.log1p(others) / math.log(11.0), near_electronics, near_edge], dtype=np.float64
    ) * (_SCALAR_WEIGHT)

    # Each present group's grid is scaled to the same length, so a laptop's many cells do not drown
    # out where the mug stands; the mug group weighs most, since that is what users ask about.
    blocks = []
    for i in range(groups):
        cells = grids[i].ravel()
        norm = float(np.linalg.norm(cells))
        if norm > 0:
            cells = cells / norm * _GROUP_WEIGHTS[i]
        blocks.append(np.concatenate([cells, count_feat[i : i + 1]]))
    vec = np.concatenate([*blocks, scalars])
    norm = float(np.linalg.norm(vec))
    if norm > 0:
        vec = vec / norm
    return [round(float(v), 6) for v in vec]


# --- models ---------------------------------------------------------------------------------------


class LayoutRecord(BaseModel):
    """One analysed layout, with the whole analysis JSON so an analysis id outlives the process."""

    analysis_id: str = Field(min_length=1, max_length=200)
    created_at: datetime
    image_sha256: str | None = None
    scene: Scene
    scale: Scale
    embedding: list[float] | None = None
    layout_vector: list[float]
    labels: list[str] = Field(default_factory=list, description="sorted unique object labels")
    has_violations: bool = False
    summary: str = ""
    thumbnail_key: str | None = None
    annotated_key: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _sorted_unique(cls, v: list[str]) -> list[str]:
        return sorted(set(v))

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class LayoutFilters(BaseModel):
    """What a stored layout must have to be returned; an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")

    labels_all: list[str] = Field(
        default_factory=list,
        description="COCO labels that must all be present, e.g. ['laptop', 'cup']",
    )
    has_violations: bool | None = Field(
        None, description="true: only layouts where a rule was violated; false: only clean ones"
    )
    since: datetime | None = Field(
        None, description="analysed at or after (ISO 8601), e.g. '2026-12-01T00:00:00Z'"
    )
    until: datetime | None = Field(
        None, description="analysed before (ISO 8601), e.g. '2026-12-02T00:00:00Z'"
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and (unknown := [k for k in data if k not in cls.model_fields]):
            raise ValueError(
                f"unknown filter key {', '.join(map(repr, unknown))}; known: {', '.join(cls.model_fields)}"
            )
        return data


class LayoutMatch(BaseModel):
    record: LayoutRecord
    score: float
    image_score: float | None = None
    layout_score: float | None = None


@runtime_checkable
class LayoutStore(Protocol):
    async def put(self, record: LayoutRecord) -> None: ...

    async def get(self, analysis_id: str) -> LayoutRecord | None: ...

    async def search(
        self,
        *,
        embedding: list[float] | None = None,
        layout_vector: list[float] | None = None,
        k: int = 5,
        filters: LayoutFilters | None = None,
        exclude_id: str | None = None,
    ) -> list[LayoutMatch]: ...

    async def count(self) -> int: ...

    def status(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


# --- scoring shared by both stores -------------------------------------------------------------------

DEFAULT_IMAGE_WEIGHT = 0.7


def _epoch(dt: datetime) -> float:
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()


def _unit(v: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise MugposError(
            f"the {what} must be a non-empty list of finite numbers",
            code="bad_vector",
            hint="pass the vector exactly as the embedder or layout_vector() produced it",
        )
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 0 else arr


def _check_query(embedding: Any, layout: Any, k: int) -> None:
    if embedding is None and layout is None:
        raise MugposError(
            "a layout search needs an image embedding, a layout vector or both",
            code="bad_query",
            hint="search by image, by stored analysis id, by text or by layout geometry",
        )
    if not 1 <= k <= 1000:
        raise MugposError(f"k must be between 1 and 1000, got {k}", code="bad_query", hint="use k=5")


def hybrid_scores(
    img: np.ndarray | None, lay: np.ndarray | None, image_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted cosine; a missing component (NaN) counts as 0 so records cannot gain by lacking it.

    Returns the scores and a mask of rows with at least one component.
    """
    parts = (
        [(img, image_weight), (lay, 1.0 - image_weight)]
        if img is not None and lay is not None
        else [(img if img is not None else lay, 1.0)]
    )
    total = np.zeros(len(parts[0][0]), dtype=np.float64)  # type: ignore[arg-type]
    have = np.zeros(len(total), dtype=bool)
    for arr, w in parts:
        assert arr is not None
        ok = ~np.isnan(arr)
        total += np.where(ok, arr, 0.0) * w
        have |= ok
    return total, have


def _opt(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 6)


# --- the embedded store ---------------------------------------------------------------------------

ANN_THRESHOLD = 20_000
ANN_OVERSAMPLE = 20
ANN_MIN_CANDIDATES = 500  # re-scored exactly; more candidates cost little and keep top-1 exact
_FORMAT = 1


class _State:
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
        self.ann_threshold = ann_threshold
        self.image_weight = image_weight
        self.degraded_reason = degraded_reason
        self._lock = threading.RLock()
        self._ann_emb: Any = None
        self._ann_lay: Any = None
        self._ann_rows = 0
        self._ann_dirty = False
        self._last_mode: str | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            meta = self._read_meta()
        except OSError as exc:
            raise ConfigError(
                f"cannot use the layout folder {self.path}: {exc.strerror or exc}",
                hint="set MUGPOS_DATA_DIR to a writable folder",
            ) from exc
        self._st = _State(meta.get("embedding_dim"), int(meta.get("layout_dim", LAYOUT_DIM)))
        self._index_end = 0
        with self._lock:
            self._sync(index=False)  # the saved ANN index is loaded, not rebuilt, just below
            self._load_ann()

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
            self._ann_add(start, st.n)

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
                lay[i] = _unit(rec.layout_vector, "layout vector")
                exclude = {"layout_vector"}
                mode = "none"
                if rec.embedding:
                    if len(rec.embedding) == st.emb_dim:
                        emb[i] = _unit(rec.embedding, "embedding")
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
            self._ann_add(first, st.n)

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
        _check_query(embedding, layout_vector, k)
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
            q_emb = _unit(embedding, "embedding") if embedding is not None else None
            q_lay = _unit(layout, "layout vector") if layout is not None else None
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
            mask = self._mask(filters, exclude_id)
            q_emb_usable = q_emb is not None and st.emb_dim is not None
            cand = None
            mode = "exact"
            ann = self._ann_emb if q_emb_usable else (self._ann_lay if q_lay is not None else None)
            if use_ann and ann is not None and int(mask.sum()) > self.ann_threshold:
                q = q_emb if q_emb_usable else q_lay
                want = min(max(k * ANN_OVERSAMPLE, ANN_MIN_CANDIDATES), self._ann_rows)
                keys = np.asarray(ann.search(q, want).keys, dtype=np.int64)
                keys = keys[(keys >= 0) & (keys < st.n)]
                keys = keys[mask[keys]]
                tail = np.nonzero(mask[self._ann_rows :])[0] + self._ann_rows
                cand = np.unique(np.concatenate([keys, tail]))
                if cand.size >= k:
                    mode = "ann"
                else:
                    cand = None
            if cand is None:
                cand = np.nonzero(mask)[0]
            self._last_mode = mode
            if cand.size == 0:
                return []
            img = lay = None
            if q_emb is not None:
                img = np.full(cand.size, np.nan)
                if q_emb_usable:
                    with_emb = st.has_emb[cand]
                    img[with_emb] = st.emb[cand[with_emb]] @ q_emb
            if q_lay is not None:
                lay = (st.lay[cand] @ q_lay).astype(np.float64)
            scores, have = hybrid_scores(img, lay, self.image_weight)
            cand, scores = cand[have], scores[have]
            if img is not None:
                img = img[have]
            if lay is not None:
                lay = lay[have]
            if cand.size == 0:
                return []
            top = min(k, cand.size)
            part = np.argpartition(-scores, top - 1)[:top] if top < cand.size else np.arange(cand.size)
            order = part[np.lexsort((cand[part], -scores[part]))]
            return [
                LayoutMatch(
                    record=self._read_record(int(cand[i])),
                    score=round(float(scores[i]), 6),
                    image_score=_opt(img[i]) if img is not None else None,
                    layout_score=_opt(lay[i]) if lay is not None else None,
                )
                for i in order
            ]

    # --- the ANN index ---------------------------------------------------------------------------
    def _ann_files(self) -> tuple[Path, Path, Path]:
        return self.path / "ann-embedding.usearch", self.path / "ann-layout.usearch", self.path / "ann.json"

    def _new_index(self, dim: int) -> Any:
        from usearch.index import Index

        return Index(
            ndim=dim, metric="cos", dtype="f32", connectivity=16, expansion_add=128, expansion_search=256
        )

    def _load_ann(self) -> None:
        st = self._st
        emb_p, lay_p, meta_p = self._ann_files()
        if meta_p.exists() and lay_p.exists():
            try:
                from usearch.index import Index

                meta = json.loads(meta_p.read_text())
                rows = int(meta["rows"])
                lay_idx = Index.restore(str(lay_p))
                emb_idx = Index.restore(str(emb_p)) if emb_p.exists() and st.emb_dim else None
                ok = rows <= st.n and lay_idx is not None and len(lay_idx) == rows
                if emb_idx is not None:
                    ok = ok and len(emb_idx) == int(st.has_emb[:rows].sum())
                if ok:
                    self._ann_lay, self._ann_emb, self._ann_rows = lay_idx, emb_idx, rows
                    self._ann_add(rows, st.n)
                    return
            except Exception as exc:  # a stale or torn index is rebuilt, never fatal
                print(f"mugpos: rebuilding the layout ANN index ({exc})", file=sys.stderr)
        self._ann_add(0, st.n)

    def _ann_add(self, start: int, stop: int) -> None:
        """Add rows to the ANN indexes, building them once the store passes the threshold."""
        st = self._st
        if self._ann_lay is None:
            if int(st.alive[: st.n].sum()) < self.ann_threshold:
                return
            self._ann_lay = self._new_index(st.lay_dim)
            self._ann_emb = None
            self._ann_rows = 0
            start = 0
        start = max(start, self._ann_rows)
        if self._ann_emb is None and st.emb_dim:
            # The embedding size became known after the layout index was built: catch up.
            self._ann_emb = self._new_index(st.emb_dim)
            done = np.nonzero(st.has_emb[:start])[0]
            if done.size:
                self._ann_emb.add(done.astype(np.uint64), st.emb[done])
        if stop <= start:
            return
        keys = np.arange(start, stop, dtype=np.uint64)
        self._ann_lay.add(keys, st.lay[start:stop])
        if self._ann_emb is not None:
            sel = st.has_emb[start:stop]
            if sel.any():
                self._ann_emb.add(keys[sel], st.emb[start:stop][sel])
        self._ann_rows = stop
        self._ann_dirty = True

    def _save_ann(self) -> None:
        if self._ann_lay is None or not self._ann_dirty:
            return
        emb_p, lay_p, meta_p = self._ann_files()
        with self._flock():
            for idx, p in ((self._ann_lay, lay_p), (self._ann_emb, emb_p)):
                if idx is not None:
                    tmp = p.with_suffix(f".tmp{os.getpid()}")
                    idx.save(str(tmp))
                    os.replace(tmp, p)
            self._write_json(meta_p, {"rows": self._ann_rows})
        self._ann_dirty = False

    # --- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        st = self._st
        out: dict[str, Any] = {
            "backend": "embedded",
            "path": str(self.path),
            "count": int(st.alive[: st.n].sum()),
            "rows": st.n,
            "embedding_dim": st.emb_dim,
            "layout_dim": st.lay_dim,
            "search": "ann (usearch HNSW) + exact rescoring"
            if self._ann_lay is not None
            else "exact (numpy)",
            "ann_threshold": self.ann_threshold,
            "ann_rows": self._ann_rows if self._ann_lay is not None else 0,
            "last_search": self._last_mode,
            "degraded": self.degraded_reason is not None,
        }
        if self.degraded_reason:
            out["reason"] = self.degraded_reason
        return out

    async def aclose(self) -> None:
        def run() -> None:
            with self._lock:
                self._save_ann()

        await asyncio.to_thread(run)


# --- MongoDB (Atlas Vector Search) ----------------------------------------------------------------

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
        from pymongo import AsyncMongoClient

        ms = int(timeout_s * 1000)
        self._client: Any = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms * 3,
            tz_aware=True,
            appname="mugpos",
        )
        scheme, _, rest = uri.partition("://")
        self._where = f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}"
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
                f"MongoDB at {self._safe_uri()} is unreachable: {type(exc).__name__}",
                hint="check MUGPOS_MONGODB_URI and that the server is up",
            ) from exc
        existing = await self._col.find_one({"embedding": {"$ne": None}}, {"embedding": 1})
        dim = len(existing["embedding"]) if existing and existing.get("embedding") else None
        await self._ensure_vector_index(dim)
        return self

    def _safe_uri(self) -> str:
        """Scheme and hosts of the URI, never its credentials."""
        return self._where

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
        doc["layout_vector"] = [float(x) for x in _unit(record.layout_vector, "layout vector")]
        if record.embedding:
            doc["embedding"] = [float(x) for x in _unit(record.embedding, "embedding")]
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
        _check_query(embedding, layout_vector, k)
        q_emb = _unit(embedding, "embedding") if embedding is not None else None
        q_lay = _unit(layout_vector, "layout vector") if layout_vector is not None else None
        from pymongo.errors import OperationFailure

        docs: list[dict[str, Any]] | None = None
        if self.vector_search:
            path, q = ("embedding", q_emb) if q_emb is not None else ("layout_vector", q_lay)
            pipeline = vector_search_pipeline(
                path=path,
                query_vector=q,
                k=k,
                filters=filters,
                exclude_id=exclude_id,  # type: ignore[arg-type]
            )
            try:
                docs = await (await self._col.aggregate(pipeline)).to_list(None)
            except OperationFailure as exc:
                self.vector_search, self.capability = False, NO_VECTOR_SEARCH
                self.last_error = f"$vectorSearch: {exc}"[:300]
        if docs is None:
            pipeline = [
                {"$match": match_filter(filters, exclude_id)},
                {"$sort": {"created_at": -1}},
                {"$limit": self.fallback_limit},
                {"$project": {"_id": 0, "analysis_id": 1, "embedding": 1, "layout_vector": 1}},
            ]
            docs = await (await self._col.aggregate(pipeline)).to_list(None)
        if not docs:
            return []
        img = lay = None
        if q_emb is not None:
            img = np.array(
                [
                    float(np.dot(_unit(d["embedding"], "embedding"), q_emb))
                    if d.get("embedding") and len(d["embedding"]) == q_emb.size
                    else np.nan
                    for d in docs
                ]
            )
        if q_lay is not None:
            lay = np.array(
                [
                    float(np.dot(_unit(d["layout_vector"], "layout vector"), q_lay))
                    if d.get("layout_vector") and len(d["layout_vector"]) == q_lay.size
                    else np.nan
                    for d in docs
                ]
            )
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
                image_score=_opt(img[i]) if img is not None else None,
                layout_score=_opt(lay[i]) if lay is not None else None,
            )
            for i in order
            if ids[i] in full
        ]

    def status(self) -> dict[str, Any]:
        return {
            "backend": "mongodb",
            "server": self._where,
            "database": self._db_name,
            "collection": self.collection,
            "vector_search": bool(self.vector_search),
            "capability": self.capability,
            "last_error": self.last_error,
            "degraded": False,
        }

    async def aclose(self) -> None:
        await self._client.close()


async def open_layout_store(settings: Settings) -> LayoutStore:
    """MongoDB when configured (falling back to the embedded store if allowed), else embedded."""
    embedded_path = settings.data_dir / "layouts"
    if settings.layout_store != "mongodb":
        # loading a large store reads files: keep the event loop free while it does
        return await asyncio.to_thread(EmbeddedLayoutStore, embedded_path)
    if settings.mongodb_uri is None:
        raise ConfigError(
            "MUGPOS_LAYOUT_STORE=mongodb needs MUGPOS_MONGODB_URI",
            hint="set MUGPOS_MONGODB_URI (mongodb+srv://... or a gsm:// reference) or use the embedded store",
        )
    store = MongoLayoutStore(
        settings.mongodb_uri.get_secret_value(), settings.mongodb_db, timeout_s=settings.mongodb_timeout_s
    )
    try:
        return await store.open()
    except BackendError as exc:
        with contextlib.suppress(Exception):
            await store.aclose()
        if not settings.mongodb_fallback:
            raise
        reason = f"{exc.message}; using the embedded store at {embedded_path}"
        print(f"mugpos: {reason}", file=sys.stderr)
        return await asyncio.to_thread(EmbeddedLayoutStore, embedded_path, degraded_reason=reason)
