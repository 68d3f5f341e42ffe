"""A write-ahead journal, so storage can happen behind the answer without losing what was answered.

An analysis is appended here, and fsynced, before the call that made it answers "stored"; the layout
and blob stores are written afterwards, and a `done` mark follows. A process that dies in between
(killed, crashed, the machine lost power) leaves the entry without its mark: the next process to
open the journal applies it again (the stores' writes are idempotent: same keys, same id).

- One append-only file per process (`journal/<pid>-<start>.wal`), held under an exclusive `flock`
  while the process lives; a file whose lock can be taken belongs to a dead process and is replayed,
  then removed.
- Group commit: entries that arrive while an fsync is in flight are written together and share the
  next fsync, so 16 concurrent analyses pay for a few fsyncs, not 16.
- Frames: kind (`E` entry, `D` done), payload length, CRC-32, payload. A torn or corrupt tail frame
  was never acknowledged to anyone and is dropped on replay. `done` marks are not fsynced: losing
  one only means applying an entry twice.
- Once nothing is pending and the file has grown past `compact_bytes`, it is cut back to empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mugpos.errors import ConfigError
from mugpos.stores.health import ComponentHealth

_HEAD = struct.Struct("<cII")  # kind, payload length, crc32
COMPACT_BYTES = 16 * 1024 * 1024


@dataclass
class Entry:
    """One journalled unit of work: a JSON header and named binary parts (pictures)."""

    id: str
    header: dict[str, Any]
    parts: dict[str, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        names = list(self.parts)
        meta = {"id": self.id, "header": self.header, "parts": [[n, len(self.parts[n])] for n in names]}
        head = json.dumps(meta, separators=(",", ":")).encode()
        return struct.pack("<I", len(head)) + head + b"".join(self.parts[n] for n in names)

    @classmethod
    def decode(cls, payload: bytes) -> Entry:
        (n,) = struct.unpack_from("<I", payload)
        meta = json.loads(payload[4 : 4 + n])
        parts, pos = {}, 4 + n
        for name, size in meta["parts"]:
            parts[name] = payload[pos : pos + size]
            pos += size
        return cls(meta["id"], meta["header"], parts)


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(kind, len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, payload) for every whole, intact frame; stops at a torn or corrupt one."""
    out, pos = [], 0
    while pos + _HEAD.size <= len(data):
        kind, size, crc = _HEAD.unpack_from(data, pos)
        start, end = pos + _HEAD.size, pos + _HEAD.size + size
        if kind not in (b"E", b"D") or end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        out.append((kind, data[start:end]))
        pos = end
    return out


def pending_entries(data: bytes) -> list[Entry]:
    """Entries without a `done` mark, in the order they were written (the last write of an id wins)."""
    entries: dict[str, Entry] = {}
    for kind, payload in read_frames(data):
        if kind == b"E":
            e = Entry.decode(payload)
            entries.pop(e.id, None)
            entries[e.id] = e
        else:
            entries.pop(payload.decode(), None)
    return list(entries.values())


class Journal:
    """This process's journal file, with group commit; `orphans()` finds dead processes' entries."""

    def __init__(self, folder: Path | str, *, compact_bytes: int = COMPACT_BYTES) -> None:
        self.folder = Path(folder).expanduser()
        self.compact_bytes = compact_bytes
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / f"{os.getpid()}-{time.time_ns()}.wal"
            self._fh = open(self.path, "ab")  # noqa: SIM115 - held open for the process's life
        except OSError as exc:
            raise ConfigError(
                f"cannot write the journal in {self.folder}: {exc.strerror or exc}",
                hint="set MUGPOS_DATA_DIR to a writable folder",
            ) from exc
        fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours for as long as we live
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._queue: list[tuple[Entry, asyncio.Future[None]]] = []
        self._committing: asyncio.Task[None] | None = None
        self.commits = 0
        self.entries = 0

    # --- writing -----------------------------------------------------------------------------
    async def append(self, entry: Entry) -> None:
        """Return once `entry` is on disk (written and fsynced, together with its neighbours)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append((entry, fut))
        if self._committing is None or self._committing.done():
            self._committing = loop.create_task(self._commit_loop())
        await asyncio.shield(fut)

    async def _commit_loop(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, [e for e, _ in batch])
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else OSError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _write(self, entries: list[Entry]) -> None:
        data = b"".join(_frame(b"E", e.encode()) for e in entries)
        with self._lock:
            self._pending.update(e.id for e in entries)
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.commits += 1
            self.entries += len(entries)

    def done(self, entry_id: str) -> None:
        """The stores hold the entry now; cut the file back once nothing is pending and it is big."""
        with self._lock:
            self._pending.discard(entry_id)
            if self._pending or self._fh.tell() < self.compact_bytes:
                self._fh.write(_frame(b"D", entry_id.encode()))
                self._fh.flush()
                return
            self._fh.truncate(0)
            self._fh.seek(0)
            os.fsync(self._fh.fileno())

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- recovery ------------------------------------------------------------------------------
    def orphans(self) -> list[tuple[Path, list[Entry]]]:
        """Pending entries of journals whose process is gone (their lock is free), file by file."""
        found = []
        for path in sorted(self.folder.glob("*.wal")):
            if path == self.path:
                continue
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed below, or kept by `claim`
            except FileNotFoundError:
                continue
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process's journal
                found.append((path, pending_entries(fh.read())))
        return found

    def forget(self, path: Path) -> None:
        """Remove a dead process's journal once every entry in it has been applied."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="journal",
            backend="file",
            details={
                "path": str(self.path),
                "pending": self.pending,
                "commits": self.commits,
                "entries": self.entries,
                "bytes": self._fh.tell() if not self._fh.closed else 0,
            },
        )

    def close(self) -> None:
        """Close the file; with nothing pending it is removed (a clean exit leaves no journal)."""
        with self._lock:
            if self._fh.closed:
                return
            empty = not self._pending
            self._fh.close()
        if empty:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
