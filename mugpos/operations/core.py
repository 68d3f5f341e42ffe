"""The shared core of every operation: settings, the engine, and the stores opened on first use.

`Mugpos` (in `app.py`) is this core plus one mixin per family of operations (rules, analysis,
search); each mixin returns result models from `mugpos.results`, plus, where there is one, the
annotated picture as encoded bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from mugpos.engine.analysis import Analysis
from mugpos.engine.pipeline import Engine
from mugpos.errors import MugposError, NotFound
from mugpos.results import AnalyzeResult
from mugpos.results.uris import RESOURCE_PREFIX, layout_uri
from mugpos.settings import Settings, get_settings

if TYPE_CHECKING:
    from mugpos.engine.images import LoadedImage
    from mugpos.operations.keeping import Keeper
    from mugpos.rules.interpreter import RuleInterpreter
    from mugpos.rules.model import Rule
    from mugpos.stores.blobs import BlobStore
    from mugpos.stores.cache import DualCache
    from mugpos.stores.journal import Entry
    from mugpos.stores.layouts import LayoutRecord, LayoutStore
    from mugpos.stores.rules import RuleStore

Progress = Callable[[float, str], Awaitable[None]]
# A door that wants to hear about results (the webhook door's outbox) appends one of these to
# `Mugpos.event_sinks`: `await sink("analysis.completed", {...json...})`. Operations never import it.
EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


class CallTracker(Protocol):
    """What a door may hang on `Mugpos.watchdog` to count calls in flight (the timed pod's idle
    watchdog in `mugpos.deploy` is one); defined here so operations never import a door."""

    def track(self) -> AbstractAsyncContextManager[None]: ...


@dataclass
class Picture:
    data: bytes
    mime: str


@dataclass
class Outcome:
    """A result model and, optionally, the picture that goes with it."""

    result: BaseModel
    picture: Picture | None = None


class Core:
    def __init__(self, settings: Settings | None = None, *, any_path: bool = False) -> None:
        """`any_path=True` for a door whose user names their own files (the CLI): image paths are
        then read wherever they are; every other door keeps the allowed-folders sandbox."""
        self.settings = settings or get_settings()
        self.any_path = any_path
        self._cache: DualCache | None = None
        self.engine = Engine(self.settings, cache=self._make_cache())
        self.engine.cpu.add_warmer(_warm_rules)  # rules and moves run in the CPU-stage workers too
        self._rules: RuleStore | None = None
        self._layouts: LayoutStore | None = None
        self._blobs: BlobStore | None = None
        self._interpreter: RuleInterpreter | None = None
        self._open_lock = asyncio.Lock()
        self._keeper: Keeper | None = None  # storage behind the answer (keeping.py), opened on first use
        self._keeper_lock = asyncio.Lock()
        self.started_at = time.time()
        self.watchdog: CallTracker | None = None  # set by the HTTP server on a timed pod
        self.event_sinks: list[EventSink] = []  # set by doors that publish events (webhooks)

    def _make_cache(self) -> DualCache | None:
        from mugpos.stores.cache import DualCache

        self._cache = DualCache(self.settings)
        return self._cache

    def start(self) -> None:
        """Warm the models in the background; returns at once."""
        self.engine.start()

    async def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Hand an event to every registered sink; a sink's trouble never fails the operation."""
        for sink in self.event_sinks:
            try:
                await sink(event, data)
            except Exception:
                logging.getLogger("mugpos").exception("event sink failed for %s", event)

    # --- edges, each opened on first use by what needs it ----------------------------------
    async def _edge(self, attr: str, open_edge: Callable[[Settings], Awaitable[Any]]) -> Any:
        """Open the store held in `attr` once (rule management never pays for the layouts)."""
        if getattr(self, attr) is None:
            async with self._open_lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, await open_edge(self.settings))
        return getattr(self, attr)

    async def _rule_store(self) -> RuleStore:
        from mugpos.stores.rules import open_rule_store

        return await self._edge("_rules", open_rule_store)

    async def _layout_store(self) -> LayoutStore:
        from mugpos.stores.layouts import open_layout_store

        return await self._edge("_layouts", open_layout_store)

    async def _blob_store(self) -> BlobStore:
        from mugpos.stores.blobs import open_blob_store

        return await self._edge("_blobs", open_blob_store)

    async def _keeping(self) -> Keeper:
        """The journal and its writer; opening it first applies what a killed process left pending."""
        if self._keeper is None:
            async with self._keeper_lock:
                if self._keeper is None:
                    from mugpos.operations.keeping import open_keeper

                    self._keeper = await open_keeper(self.settings, self._apply_entry)
        return self._keeper

    async def _apply_entry(self, entry: Entry, extra: Any) -> None:
        raise NotImplementedError  # AnalysisOps writes analyses into the stores

    async def _blob(self, key: str) -> tuple[bytes, str]:
        """A stored picture, or one journalled by this process whose write is still in flight."""
        if self._keeper is not None and (found := self._keeper.recent_part(key)) is not None:
            return found
        blobs = await self._blob_store()
        return await blobs.get(key)

    @property
    def interpreter(self) -> RuleInterpreter:
        if self._interpreter is None:
            from mugpos.rules.interpreter import RuleInterpreter

            self._interpreter = RuleInterpreter(self.settings)
        return self._interpreter

    async def load_image(self, ref: str) -> LoadedImage:
        from mugpos.engine.images import load_image

        return await load_image(
            ref, self.settings, resolver=self._resolve_resource_image, any_path=self.any_path
        )

    async def _resolve_resource_image(self, uri: str) -> bytes:
        """`mugpos://analyses/{id}/annotated` or `/original` -> image bytes from the blob store."""
        parts = uri.removeprefix(RESOURCE_PREFIX).strip("/").split("/")
        if len(parts) == 3 and parts[0] == "analyses" and parts[2] in {"annotated", "original"}:
            record = await self._record(parts[1])
            key = record.annotated_key if parts[2] == "annotated" else record.analysis.get("original_key")
            if not key:
                raise NotFound(
                    f"analysis {parts[1]} has no stored {parts[2]} image",
                    hint="originals are kept only with MUGPOS_STORE_ORIGINALS=true",
                )
            data, _ = await self._blob(key)
            return data
        raise NotFound(f"{uri} is not an image resource", hint="use mugpos://analyses/{id}/annotated")

    async def _rules_for(self, texts: list[str] | None, use_saved: bool) -> list[Rule]:
        rules: list[Rule] = []
        if use_saved:
            store = await self._rule_store()
            rules.extend(await store.list(enabled_only=True))
        for text in texts or []:
            rules.extend(await self.interpreter.interpret_all(text))
        return rules

    async def _record(self, analysis_id: str) -> LayoutRecord:
        try:
            keeper = await self._keeping()  # replays what a killed process left, then reads
        except MugposError as exc:  # an unwritable journal must not hide what the store holds
            logging.getLogger("mugpos").warning("journal unavailable: %s", exc.message)
        else:
            if (kept := keeper.recent(analysis_id)) is not None:
                return kept
        layouts = await self._layout_store()
        record = await layouts.get(analysis_id)
        if record is None:
            raise NotFound(
                f"no stored analysis {analysis_id!r}",
                hint="analyze_image returns an analysis_id",
                door_hints={"cli": "`mugpos analyze IMAGE` prints the id it stores ('stored as a-...')"},
            )
        return record

    async def get_analysis(self, analysis_id: str) -> AnalyzeResult:
        record = await self._record(analysis_id)
        return AnalyzeResult.model_validate(record.analysis)

    async def get_annotated(self, analysis_id: str) -> Picture:
        record = await self._record(analysis_id)
        if not record.annotated_key:
            raise NotFound(f"analysis {analysis_id} has no annotated image")
        data, mime = await self._blob(record.annotated_key)
        return Picture(data, mime)

    async def get_layout(self, analysis_id: str) -> dict[str, Any]:
        record = await self._record(analysis_id)
        return record.model_dump(mode="json", exclude={"analysis", "embedding"}) | {
            "uri": layout_uri(analysis_id)
        }


def new_analysis_id() -> str:
    return f"a-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:10]}"


def _warm_rules() -> None:
    """A CPU-stage worker's warm-up for `_evaluate` and `_solve`: the rules' and solver's imports."""
    from mugpos.rules import evaluator, solver  # noqa: F401


def _evaluate(rules: list[Rule], analysis: Analysis) -> list[Any]:
    """The rules' verdicts on the measured desk (a stored analysis fits its plane here first).
    Module-level and pure: it runs in a CPU-stage worker process (`Engine.cpu`)."""
    if not rules:
        return []
    from mugpos.rules.evaluator import evaluate

    return evaluate(rules, analysis.scene, analysis.scale, analysis.desk)


def _solve(rules: list[Rule], analysis: Analysis) -> Any:
    """The moves that would satisfy the rules (`mugpos.rules.solver.solve`); like `_evaluate`, run
    in a CPU-stage worker process."""
    from mugpos.rules.solver import solve

    return solve(rules, analysis.scene, analysis.scale, analysis.desk)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            e = errors()[0]
            loc = ".".join(str(x) for x in e.get("loc", ()))
            return f"{loc}: {e.get('msg')}" if loc else str(e.get("msg"))
        except Exception:
            pass
    return str(exc).splitlines()[0][:300]


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
