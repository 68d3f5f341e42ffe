"""The one implementation of every operation; the CLI, the MCP tools and the RunPod worker call it.

`Mugpos` wires the engine (models, batching, cache), the rules (interpreter, evaluator, solver,
store) and the memory (layout store, blob store). Each public coroutine returns a result model from
`mugpos.results`, plus, where there is one, the annotated picture as encoded bytes.
`TOOLS` maps MCP/RunPod tool names to their argument models and handlers, so the doors stay thin.
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
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mugpos import __version__
from mugpos.engine.pipeline import Engine, SceneAnalysis
from mugpos.errors import MugposError, NotFound, RuleError, SceneError
from mugpos.results import (
    AnalyzeResult,
    CheckResult,
    EngineStatus,
    Explanation,
    ImageRef,
    LayoutHit,
    Removed,
    RuleInfo,
    RuleList,
    SearchResult,
    SuggestResult,
)
from mugpos.scene.model import Scene
from mugpos.settings import Settings, get_settings

if TYPE_CHECKING:
    from mugpos.engine.images import LoadedImage
    from mugpos.rules.interpreter import RuleInterpreter
    from mugpos.rules.model import Rule
    from mugpos.stores.blobs import BlobStore
    from mugpos.stores.cache import DualCache
    from mugpos.stores.layouts import LayoutFilters, LayoutRecord, LayoutStore
    from mugpos.stores.rules import RuleStore

log = logging.getLogger("mugpos")

Progress = Callable[[float, str], Awaitable[None]]
RESOURCE_PREFIX = "mugpos://"


class CallTracker(Protocol):
    """What a door may hang on `Mugpos.watchdog` to count calls in flight (the timed pod's idle
    watchdog in `mugpos.deploy` is one); defined here so operations never import a door."""

    def track(self) -> AbstractAsyncContextManager[None]: ...


def analysis_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}analyses/{analysis_id}"


def annotated_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}analyses/{analysis_id}/annotated"


def layout_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}layouts/{analysis_id}"


@dataclass
class Picture:
    data: bytes
    mime: str


@dataclass
class Outcome:
    """A result model and, optionally, the picture that goes with it."""

    result: BaseModel
    picture: Picture | None = None


class Mugpos:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._cache: DualCache | None = None
        self.engine = Engine(self.settings, cache=self._make_cache())
        self._rules: RuleStore | None = None
        self._layouts: LayoutStore | None = None
        self._blobs: BlobStore | None = None
        self._interpreter: RuleInterpreter | None = None
        self._open_lock = asyncio.Lock()
        self.started_at = time.time()
        self.watchdog: CallTracker | None = None  # set by the HTTP server on a timed pod

    def _make_cache(self) -> DualCache | None:
        from mugpos.stores.cache import DualCache

        self._cache = DualCache(self.settings)
        return self._cache

    def start(self) -> None:
        """Warm the models in the background; returns at once."""
        self.engine.start()

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

    @property
    def interpreter(self) -> RuleInterpreter:
        if self._interpreter is None:
            from mugpos.rules.interpreter import RuleInterpreter

            self._interpreter = RuleInterpreter(self.settings)
        return self._interpreter

    async def load_image(self, ref: str) -> LoadedImage:
        from mugpos.engine.images import load_image

        return await load_image(ref, self.settings, resolver=self._resolve_resource_image)

    async def _resolve_resource_image(self, uri: str) -> bytes:
        """`mugpos://analyses/{id}/annotated` or `/original` -> image bytes from the blob store."""
        blobs = await self._blob_store()
        parts = uri.removeprefix(RESOURCE_PREFIX).strip("/").split("/")
        if len(parts) == 3 and parts[0] == "analyses" and parts[2] in {"annotated", "original"}:
            record = await self._record(parts[1])
            key = record.annotated_key if parts[2] == "annotated" else record.analysis.get("original_key")
            if not key:
                raise NotFound(
                    f"analysis {parts[1]} has no stored {parts[2]} image",
                    hint="originals are kept only with MUGPOS_STORE_ORIGINALS=true",
                )
            data, _ = await blobs.get(key)
            return data
        raise NotFound(f"{uri} is not an image resource", hint="use mugpos://analyses/{id}/annotated")

    # --- rules --------------------------------------------------------------------------
    async def _rules_for(self, texts: list[str] | None, use_saved: bool) -> list[Rule]:
        rules: list[Rule] = []
        if use_saved:
            store = await self._rule_store()
            rules.extend(await store.list(enabled_only=True))
        for text in texts or []:
            rule, _ = await self.interpreter.interpret(text)
            rules.append(rule)
        return rules

    async def add_rule(
        self, text: str | None = None, rule: dict[str, Any] | None = None, severity: str | None = None
    ) -> RuleInfo:
        if (text is None) == (rule is None):
            raise RuleError("give either the rule's text or a structured rule", hint="add_rule(text='...')")
        parsed = (
            (await self.interpreter.interpret(text))[0]
            if text is not None
            else self.interpreter.from_structured(rule or {})
        )
        if severity is not None:
            parsed = parsed.model_copy(update={"severity": severity})
        store = await self._rule_store()
        return _rule_info(await store.add(parsed))

    async def list_rules(self) -> RuleList:
        store = await self._rule_store()
        return RuleList(rules=[_rule_info(r) for r in await store.list()])

    async def get_rule(self, rule_id: str) -> RuleInfo:
        store = await self._rule_store()
        return _rule_info(await store.get(rule_id))

    async def remove_rule(self, rule_id: str) -> Removed:
        store = await self._rule_store()
        removed = await store.remove(rule_id)
        if not removed:
            raise NotFound(f"no rule with id {rule_id!r}", hint="list_rules shows the ids")
        return Removed(id=rule_id, removed=True)

    async def set_rule_enabled(self, rule_id: str, enabled: bool) -> RuleInfo:
        store = await self._rule_store()
        return _rule_info(await store.set_enabled(rule_id, enabled))

    async def explain_rule(self, text: str) -> Explanation:
        return await self.interpreter.explain(text)

    # --- analysis -----------------------------------------------------------------------
    async def analyze(
        self,
        image: str,
        rules: list[str] | None = None,
        *,
        px_per_cm: float | None = None,
        use_saved_rules: bool = True,
        store: bool = True,
        annotate: bool = True,
        progress: Progress | None = None,
    ) -> Outcome:
        t_start = time.perf_counter()
        rule_list = await self._rules_for(rules, use_saved_rules)  # bad rules fail before any model work
        t0 = time.perf_counter()
        img = await self.load_image(image)
        load_ms = (time.perf_counter() - t0) * 1000
        analysis = await self.engine.analyze(img, px_per_cm=px_per_cm, progress=progress)
        analysis.timings.decode_ms = round(analysis.timings.decode_ms + load_ms, 2)
        if progress:
            await progress(0.8, "checking rules")
        t0 = time.perf_counter()
        verdicts = _evaluate(rule_list, analysis)
        analysis.timings.rules_ms = _ms(t0)
        result = self._analyze_result(analysis, verdicts, img.source)
        picture = None
        if annotate:
            t0 = time.perf_counter()
            picture = await asyncio.to_thread(self._draw_analysis, img, analysis, verdicts)
            result.timings.annotate_ms = _ms(t0)
        if store:
            t0 = time.perf_counter()
            await self._store(result, analysis, picture, img)
            result.timings.store_ms = _ms(t0)
        result.timings.total_ms = _ms(t_start)
        if progress:
            await progress(1.0, "done")
        return Outcome(result, picture)

    def _analyze_result(
        self, analysis: SceneAnalysis, verdicts: list[Any], source: str | None
    ) -> AnalyzeResult:
        aid = new_analysis_id()
        summary = _summary(analysis, verdicts)
        return AnalyzeResult(
            analysis_id=aid,
            created_at=datetime.now(UTC),
            image=ImageRef(
                width=analysis.image.width,
                height=analysis.image.height,
                sha256=analysis.image_sha256,
                source=source,
            ),
            summary=summary,
            scene=analysis.scene,
            scale=analysis.scale,
            surface=analysis.surface,
            mugs=analysis.mugs,
            relations=analysis.relations,
            rules=verdicts,
            embedder=analysis.embedder,
            timings=analysis.timings.model_copy(),
            warnings=list(analysis.warnings),
            resources={
                "analysis": analysis_uri(aid),
                "annotated": annotated_uri(aid),
                "layout": layout_uri(aid),
            },
        )

    def _draw_analysis(self, img: LoadedImage, analysis: SceneAnalysis, verdicts: list[Any]) -> Picture:
        from mugpos.engine.annotate import draw_analysis, encode_image

        involved = {v.object_id for r in verdicts for v in r.violations} | {
            v.other_id for r in verdicts for v in r.violations if v.other_id
        }
        drawn = draw_analysis(img.image, analysis.scene, analysis.mugs, highlight_ids=involved)
        data, mime = encode_image(drawn, self.settings)
        return Picture(data, mime)

    async def _store(
        self, result: AnalyzeResult, analysis: SceneAnalysis, picture: Picture | None, img: LoadedImage | None
    ) -> None:
        """Keep the analysis and its pictures; storage trouble never fails the analysis."""
        from mugpos.stores.layouts import LayoutRecord, layout_vector

        try:
            layouts, blobs = await self._layout_store(), await self._blob_store()
            aid = result.analysis_id
            annotated_key = thumb_key = None
            extra: dict[str, Any] = {}
            if picture is not None:
                ext = picture.mime.split("/")[-1]
                annotated_key = await blobs.put(f"analyses/{aid}/annotated.{ext}", picture.data, picture.mime)
            if img is not None:
                thumb = await asyncio.to_thread(self._thumbnail, img)
                thumb_key = await blobs.put(
                    f"analyses/{aid}/thumb.{thumb.mime.split('/')[-1]}", thumb.data, thumb.mime
                )
                if self.settings.store_originals:
                    extra["original_key"] = await blobs.put(
                        f"analyses/{aid}/original.{img.format.lower() or 'bin'}",
                        img.data,
                        f"image/{img.format.lower()}",
                    )
            record = LayoutRecord(
                analysis_id=aid,
                created_at=result.created_at,
                image_sha256=analysis.image_sha256,
                scene=analysis.scene,
                scale=analysis.scale,
                embedding=analysis.embedding,
                layout_vector=layout_vector(analysis.scene, analysis.scale),
                labels=sorted({o.label for o in analysis.scene.objects}),
                has_violations=any(v.status == "violated" for v in result.rules),
                summary=result.summary,
                thumbnail_key=thumb_key,
                annotated_key=annotated_key,
                analysis={**result.model_dump(mode="json"), **extra},
            )
            await layouts.put(record)
        except MugposError as exc:
            result.warnings.append(f"analysis not stored: {exc.message}")
            result.resources = {}
        except Exception as exc:  # storage is an edge: report, never fail the analysis
            log.exception("storing analysis failed")
            result.warnings.append(f"analysis not stored: {type(exc).__name__}")
            result.resources = {}

    def _thumbnail(self, img: LoadedImage) -> Picture:
        from mugpos.engine.annotate import encode_image

        data, mime = encode_image(img.image, self.settings, max_side=256)
        return Picture(data, mime)

    async def _record(self, analysis_id: str) -> LayoutRecord:
        layouts = await self._layout_store()
        record = await layouts.get(analysis_id)
        if record is None:
            raise NotFound(f"no stored analysis {analysis_id!r}", hint="analyze_image returns an analysis_id")
        return record

    async def get_analysis(self, analysis_id: str) -> AnalyzeResult:
        record = await self._record(analysis_id)
        return AnalyzeResult.model_validate(record.analysis)

    async def get_annotated(self, analysis_id: str) -> Picture:
        record = await self._record(analysis_id)
        if not record.annotated_key:
            raise NotFound(f"analysis {analysis_id} has no annotated image")
        blobs = await self._blob_store()
        data, mime = await blobs.get(record.annotated_key)
        return Picture(data, mime)

    async def get_layout(self, analysis_id: str) -> dict[str, Any]:
        record = await self._record(analysis_id)
        return record.model_dump(mode="json", exclude={"analysis", "embedding"}) | {
            "uri": layout_uri(analysis_id)
        }

    # --- check and suggest ----------------------------------------------------------------
    async def _scene_analysis(
        self,
        image: str | None,
        analysis_id: str | None,
        scene: Scene | dict[str, Any] | None,
        progress: Progress | None,
    ) -> tuple[SceneAnalysis, LoadedImage | None]:
        given = [x is not None for x in (image, analysis_id, scene)]
        if sum(given) != 1:
            raise SceneError(
                "give exactly one of image, analysis_id or scene",
                hint="image: a path, URL or base64; analysis_id: from analyze_image; scene: Scene JSON",
            )
        if scene is not None:
            try:
                parsed = scene if isinstance(scene, Scene) else Scene.model_validate(scene)
            except Exception as exc:
                raise SceneError(
                    f"not a valid scene: {_first_error(exc)}", hint="see the Scene JSON in the docs"
                ) from None
            if len(parsed.objects) > self.settings.max_scene_objects:
                raise SceneError(
                    f"scene has {len(parsed.objects)} objects; the limit is {self.settings.max_scene_objects}"
                )
            return self.engine.analyze_scene(parsed), None
        if analysis_id is not None:
            stored = await self.get_analysis(analysis_id)
            return self.engine.analyze_scene(stored.scene), None
        assert image is not None
        img = await self.load_image(image)
        return await self.engine.analyze(img, progress=progress), img

    async def check(
        self,
        *,
        image: str | None = None,
        analysis_id: str | None = None,
        scene: Scene | dict[str, Any] | None = None,
        rules: list[str] | None = None,
        use_saved_rules: bool = True,
        progress: Progress | None = None,
    ) -> CheckResult:
        rule_list = await self._rules_for(rules, use_saved_rules)
        analysis, _ = await self._scene_analysis(image, analysis_id, scene, progress)
        return CheckResult(
            rules=_evaluate(rule_list, analysis), scale=analysis.scale, analysis_id=analysis_id
        )

    async def suggest(
        self,
        *,
        image: str | None = None,
        analysis_id: str | None = None,
        scene: Scene | dict[str, Any] | None = None,
        rules: list[str] | None = None,
        use_saved_rules: bool = True,
        annotate: bool = True,
        progress: Progress | None = None,
    ) -> Outcome:
        from mugpos.rules.solver import solve

        rule_list = await self._rules_for(rules, use_saved_rules)
        analysis, img = await self._scene_analysis(image, analysis_id, scene, progress)
        verdicts = _evaluate(rule_list, analysis)
        if progress:
            await progress(0.85, "solving placement")
        solved = await asyncio.to_thread(solve, rule_list, analysis.scene, analysis.scale)
        result = SuggestResult(
            suggestions=solved.suggestions,
            conflicts=solved.conflicts,
            rules=verdicts,
            scale=analysis.scale,
            analysis_id=analysis_id,
            summary=_suggest_summary(solved.suggestions, solved.conflicts, verdicts),
            resources={"analysis": analysis_uri(analysis_id)} if analysis_id else {},
        )
        picture = None
        if annotate:
            picture = await self._suggest_picture(result, analysis, img, analysis_id)
        return Outcome(result, picture)

    async def _suggest_picture(
        self, result: SuggestResult, analysis: SceneAnalysis, img: LoadedImage | None, analysis_id: str | None
    ) -> Picture | None:
        from PIL import Image

        from mugpos.engine.annotate import draw_suggestions, encode_image

        base: Image.Image | None = img.image if img is not None else None
        if base is None and analysis_id is not None:
            try:
                import io

                pic = await self.get_annotated(analysis_id)
                base = Image.open(io.BytesIO(pic.data)).convert("RGB")
                if base.size != (analysis.image.width, analysis.image.height):
                    base = base.resize((analysis.image.width, analysis.image.height))
            except MugposError:
                base = None
        if base is None:  # a client scene: draw on a plain canvas of the image's size
            base = Image.new("RGB", (analysis.image.width, analysis.image.height), (245, 245, 240))
        moves = [(s.object_id, s.from_box, s.to_box, s.instruction) for s in result.suggestions]

        def draw() -> Picture:
            data, mime = encode_image(draw_suggestions(base, analysis.scene, moves), self.settings)
            return Picture(data, mime)

        return await asyncio.to_thread(draw)

    # --- search ---------------------------------------------------------------------------
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
        flt = (
            filters
            if isinstance(filters, LayoutFilters) or filters is None
            else LayoutFilters.model_validate(filters)
        )
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

    # --- status -----------------------------------------------------------------------------
    async def status(self) -> EngineStatus:
        eng = self.engine.status()
        stores: dict[str, Any] = {}
        degraded: list[str] = []
        for name, store in (("rules", self._rules), ("layouts", self._layouts), ("blobs", self._blobs)):
            health = store.status() if store is not None else None
            stores[name] = health.model_dump(mode="json") if health is not None else {"opened": False}
            if health is not None and (problem := health.problem()):
                degraded.append(problem)
        tiers = self._cache.status() if self._cache is not None else {}
        cache = {tier: health.model_dump(mode="json") for tier, health in tiers.items()}
        degraded.extend(p for health in tiers.values() if (p := health.problem()))
        if eng["error"]:
            degraded.append(f"models: {eng['error']}")
        if "disabled" in eng["embedder"]["note"]:
            degraded.append(f"embedder {eng['embedder']['note']}")
        return EngineStatus(
            version=__version__,
            device=eng["device"],
            models={
                "stage": eng["stage"],
                "ready": eng["ready"],
                "detector": eng["detector"],
                "embedder": eng["embedder"],
                "load_seconds": eng["load_seconds"],
                "error": eng["error"],
            },
            cache=cache,
            stores=stores,
            batching=eng["batching"],
            degraded=degraded,
        )

    async def aclose(self) -> None:
        await self.engine.aclose()
        for edge in (self._cache, self._rules, self._layouts, self._blobs):
            if edge is not None:
                await edge.aclose()


# --- tool table: names, argument models and handlers shared by MCP and RunPod -------------------


class AnalyzeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="local path, http(s) URL, data URI, raw base64, or mugpos:// resource URI")
    rules: list[str] | None = Field(
        None, description="extra rules in plain language, checked with the saved ones"
    )
    px_per_cm: float | None = Field(
        None, gt=0, description="known scale; estimated from known objects if omitted"
    )
    use_saved_rules: bool = True


class SuggestArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = None
    analysis_id: str | None = None
    scene: Scene | None = None
    rules: list[str] | None = None
    use_saved_rules: bool = True


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str | None = None
    analysis_id: str | None = None
    text: str | None = None
    k: int = Field(5, ge=1, le=100)
    filters: dict[str, Any] | None = None


class AddRuleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    rule: dict[str, Any] | None = None
    severity: Literal["critical", "warning", "info"] | None = None


class RuleIdArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule_id: str


class TextArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _t_analyze(app: Mugpos, a: AnalyzeArgs, p: Progress | None) -> Outcome:
    return await app.analyze(
        a.image, a.rules, px_per_cm=a.px_per_cm, use_saved_rules=a.use_saved_rules, progress=p
    )


async def _t_suggest(app: Mugpos, a: SuggestArgs, p: Progress | None) -> Outcome:
    return await app.suggest(
        image=a.image,
        analysis_id=a.analysis_id,
        scene=a.scene,
        rules=a.rules,
        use_saved_rules=a.use_saved_rules,
        progress=p,
    )


async def _t_search(app: Mugpos, a: SearchArgs, p: Progress | None) -> Outcome:
    return Outcome(
        await app.search(
            image=a.image, analysis_id=a.analysis_id, text=a.text, k=a.k, filters=a.filters, progress=p
        )
    )


async def _t_add(app: Mugpos, a: AddRuleArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.add_rule(a.text, a.rule, a.severity))


async def _t_list(app: Mugpos, a: NoArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.list_rules())


async def _t_remove(app: Mugpos, a: RuleIdArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.remove_rule(a.rule_id))


async def _t_explain(app: Mugpos, a: TextArgs, p: Progress | None) -> Outcome:
    return Outcome(await app.explain_rule(a.text))


@dataclass(frozen=True)
class ToolSpec:
    args: type[BaseModel]
    result: type[BaseModel]
    handler: Callable[[Mugpos, Any, Progress | None], Awaitable[Outcome]]


TOOLS: dict[str, ToolSpec] = {
    "analyze_image": ToolSpec(AnalyzeArgs, AnalyzeResult, _t_analyze),
    "suggest_position": ToolSpec(SuggestArgs, SuggestResult, _t_suggest),
    "search_similar_layouts": ToolSpec(SearchArgs, SearchResult, _t_search),
    "add_rule": ToolSpec(AddRuleArgs, RuleInfo, _t_add),
    "list_rules": ToolSpec(NoArgs, RuleList, _t_list),
    "remove_rule": ToolSpec(RuleIdArgs, Removed, _t_remove),
    "explain_rule": ToolSpec(TextArgs, Explanation, _t_explain),
}


async def call_tool(
    app: Mugpos, name: str, arguments: dict[str, Any], progress: Progress | None = None
) -> Outcome:
    """Validate arguments and run one tool: the single entry for the RunPod worker (and tests)."""
    spec = TOOLS.get(name)
    if spec is None:
        raise MugposError(f"unknown tool {name!r}", code="unknown_tool", hint=f"tools: {', '.join(TOOLS)}")
    try:
        args = spec.args.model_validate(arguments or {})
    except Exception as exc:
        raise MugposError(
            f"bad arguments for {name}: {_first_error(exc)}",
            code="bad_arguments",
            hint=f"schema: {spec.args.__name__}",
        ) from None
    return await spec.handler(app, args, progress)


# --- small pure helpers -----------------------------------------------------------------------


def new_analysis_id() -> str:
    return f"a-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:10]}"


def _evaluate(rules: list[Rule], analysis: SceneAnalysis) -> list[Any]:
    if not rules:
        return []
    from mugpos.rules.evaluator import evaluate

    return evaluate(rules, analysis.scene, analysis.scale)


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


def _rule_info(rule: Rule) -> RuleInfo:
    assert rule.id is not None
    return RuleInfo(
        id=rule.id,
        text=rule.text,
        interpretation=rule.interpretation,
        severity=rule.severity,
        enabled=rule.enabled,
        checkable=rule.checkable,
        reason=rule.reason,
        rule=rule.model_dump(mode="json"),
    )


def _summary(analysis: SceneAnalysis, verdicts: list[Any]) -> str:
    n = len(analysis.mugs)
    mugs = ", ".join(f"{m.object_id} at {m.zone}" for m in analysis.mugs[:4]) or "no mug found"
    others = sorted({o.label for o in analysis.scene.objects if not o.is_mug})
    surface = f"on {analysis.surface.id}" if analysis.surface.id else "no table detected"
    broken = [v for v in verdicts if v.status == "violated"]
    rules = f"; {len(broken)} of {len(verdicts)} rules violated" if verdicts else ""
    ctx = f"; also {', '.join(others[:6])}" if others else ""
    return f"{n} mug{'s' if n != 1 else ''} ({mugs}), {surface}{ctx}{rules}; scale {analysis.scale.px_per_cm:.2f} px/cm ({analysis.scale.source})"


def _suggest_summary(suggestions: list[Any], conflicts: list[Any], verdicts: list[Any]) -> str:
    if not verdicts:
        return "no rules to check: add rules or pass rules"
    if not suggestions:
        return (
            "every mug already satisfies the rules"
            if not conflicts
            else f"{len(conflicts)} conflicts; no move helps"
        )
    moves = "; ".join(f"{s.object_id}: {s.instruction}" for s in suggestions[:4])
    return moves + (f"; {len(conflicts)} conflicts" if conflicts else "")


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
