"""Analyse a photo, keep it, and check or suggest against a photo, a stored analysis or a scene."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mugpos import telemetry
from mugpos.engine.analysis import Analysis
from mugpos.errors import MugposError, SceneError
from mugpos.operations.core import (
    Core,
    Outcome,
    Picture,
    Progress,
    _evaluate,
    _first_error,
    _ms,
    _solve,
    new_analysis_id,
)
from mugpos.results import AnalyzeResult, CheckResult, SuggestResult
from mugpos.results.summaries import analysis_summary, suggest_summary
from mugpos.results.uris import analysis_uri, annotated_uri, layout_uri
from mugpos.scene.model import Scene

if TYPE_CHECKING:
    from mugpos.engine.images import LoadedImage
    from mugpos.stores.journal import Entry

log = logging.getLogger("mugpos")
RECORD_PART = "record.json"  # the layout record inside a journal entry


class AnalysisOps(Core):
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
        img = await self.load_image(image)
        analysis = await self.engine.analyze(img, px_per_cm=px_per_cm, progress=progress)
        analysis.timings.load_ms = img.read_ms
        analysis.timings.decode_ms = round(analysis.timings.decode_ms + img.decode_ms, 2)
        if progress:
            await progress(0.8, "checking rules")
        t0 = time.perf_counter()
        verdicts = await self._verdicts(rule_list, analysis)
        analysis.timings.rules_ms = _ms(t0)
        result = self._analyze_result(analysis, verdicts)
        picture = None
        if annotate:
            t0 = time.perf_counter()
            picture = await asyncio.to_thread(self._draw_analysis, img, analysis, verdicts)
            result.timings.annotate_ms = _ms(t0)
        if store:
            t0 = time.perf_counter()
            await self._store(result, analysis, picture, img)
            result.timings.store_ms = _ms(t0)
        else:
            result.resources = {}  # nothing was kept, so no URI would resolve
        result.timings.total_ms = _ms(t_start)
        telemetry.record_analysis(result, picture)  # /metrics stage timings, the dashboard feed
        await self._emit_analysis(result)
        if progress:
            await progress(1.0, "done")
        return Outcome(result, picture)

    async def _verdicts(self, rules: list[Any], analysis: Analysis) -> list[Any]:
        """Rules over the measured desk: CPU work, in a CPU-stage worker (`Engine.cpu`), off the
        event loop and this interpreter's lock."""
        return await self.engine.cpu.run(_evaluate, rules, analysis) if rules else []

    def _analyze_result(self, analysis: Analysis, verdicts: list[Any]) -> AnalyzeResult:
        aid = new_analysis_id()
        return AnalyzeResult.of(
            analysis,
            analysis_id=aid,
            created_at=datetime.now(UTC),
            summary=analysis_summary(analysis, verdicts),
            object_counts=dict(Counter(o.label for o in analysis.scene.objects)),
            rules=verdicts,
            resources={
                "analysis": analysis_uri(aid),
                "annotated": annotated_uri(aid),
                "layout": layout_uri(aid),
            },
        )

    def _draw_analysis(self, img: LoadedImage, analysis: Analysis, verdicts: list[Any]) -> Picture:
        from mugpos.engine.annotate import draw_analysis, encode_image

        involved = {v.object_id for r in verdicts for v in r.violations} | {
            v.other_id for r in verdicts for v in r.violations if v.other_id
        }
        drawn = draw_analysis(
            img.image,
            analysis.scene,
            analysis.mugs,
            highlight_ids=involved,
            max_side=self.settings.annotated_max_side,  # drawn once at the size it is sent
        )
        data, mime = encode_image(drawn, self.settings)
        return Picture(data, mime)

    async def _store(
        self, result: AnalyzeResult, analysis: Analysis, picture: Picture | None, img: LoadedImage | None
    ) -> None:
        """Journal the analysis and its picture (on disk before the answer goes out); the layout and
        blob stores are written behind the answer (`keeping.py`). Trouble never fails the analysis."""
        from mugpos.stores.journal import Entry
        from mugpos.stores.layouts import LayoutRecord, layout_vector

        try:
            keeper = await self._keeping()
            aid = result.analysis_id
            parts: dict[str, bytes] = {}
            mimes: dict[str, str] = {}
            extra: dict[str, Any] = {}
            annotated_key = None
            if picture is not None:
                annotated_key = f"analyses/{aid}/annotated.{picture.mime.split('/')[-1]}"
                parts[annotated_key], mimes[annotated_key] = picture.data, picture.mime
            if img is not None and self.settings.store_originals:
                key = f"analyses/{aid}/original.{img.format.lower() or 'bin'}"
                parts[key], mimes[key] = img.data, f"image/{img.format.lower()}"
                extra["original_key"] = key
            thumb_key = None
            if img is not None or picture is not None:
                thumb_key = f"analyses/{aid}/thumb.{self.settings.annotated_format}"
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

            def entry() -> Entry:
                parts[RECORD_PART] = record.model_dump_json().encode()
                return Entry(aid, {"mimes": mimes}, parts)

            await keeper.keep(await asyncio.to_thread(entry), record, img)
        except MugposError as exc:
            result.warnings.append(f"analysis not stored: {exc.message}")
            result.resources = {}
        except Exception as exc:  # storage is an edge: report, never fail the analysis
            log.exception("storing analysis failed")
            result.warnings.append(f"analysis not stored: {type(exc).__name__}")
            result.resources = {}

    async def _apply_entry(self, entry: Entry, img: LoadedImage | None) -> None:
        """Write one journalled analysis into the stores (idempotent: same keys, same id)."""
        from mugpos.stores.layouts import LayoutRecord

        layouts, blobs = await self._layout_store(), await self._blob_store()

        def prepare() -> tuple[LayoutRecord, Picture | None]:  # CPU work: off the event loop
            record = LayoutRecord.model_validate_json(entry.parts[RECORD_PART])
            return record, self._thumbnail(img, entry) if record.thumbnail_key else None

        record, thumb = await asyncio.to_thread(prepare)
        mimes = entry.header["mimes"]
        for key, data in entry.parts.items():
            if key in mimes:
                await blobs.put(key, data, mimes[key])
        if thumb is not None and record.thumbnail_key:
            await blobs.put(record.thumbnail_key, thumb.data, thumb.mime)
        await layouts.put(record)

    def _thumbnail(self, img: LoadedImage | None, entry: Entry) -> Picture:
        """From the photo in memory, or (replaying after a crash) from the journalled picture."""
        import io

        from PIL import Image

        from mugpos.engine.annotate import encode_image

        if img is not None:
            source = img.image
        else:
            pictures = [k for k in entry.header["mimes"] if "/annotated." in k or "/original." in k]
            source = Image.open(io.BytesIO(entry.parts[pictures[0]])).convert("RGB")
        data, mime = encode_image(source, self.settings, max_side=256)
        return Picture(data, mime)

    # --- check and suggest ----------------------------------------------------------------
    async def _scene_analysis(
        self,
        image: str | None,
        analysis_id: str | None,
        scene: Scene | dict[str, Any] | None,
        progress: Progress | None,
    ) -> tuple[Analysis, LoadedImage | None]:
        given = [x is not None for x in (image, analysis_id, scene)]
        if sum(given) != 1:
            raise SceneError(
                "give exactly one of image, analysis_id or scene",
                hint="image: a path, URL or base64; analysis_id: from analyze_image; scene: Scene JSON",
                door_hints={
                    "cli": "give an IMAGE, --analysis ID (from `mugpos analyze`) or --scene SCENE.json"
                },
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
            return await self.engine.analyze_scene(parsed), None
        if analysis_id is not None:  # as it was measured: same scale, source and uncertainty
            return await self.get_analysis(analysis_id), None
        assert image is not None
        img = await self.load_image(image)
        return await self.engine.analyze(img, progress=progress, embed=False), img

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
            rules=await self._verdicts(rule_list, analysis), scale=analysis.scale, analysis_id=analysis_id
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
        rule_list = await self._rules_for(rules, use_saved_rules)
        analysis, img = await self._scene_analysis(image, analysis_id, scene, progress)
        verdicts = await self._verdicts(rule_list, analysis)
        if progress:
            await progress(0.85, "solving placement")
        solved = await self.engine.cpu.run(_solve, rule_list, analysis)
        result = SuggestResult(
            suggestions=solved.suggestions,
            conflicts=solved.conflicts,
            rules=verdicts,
            scale=analysis.scale,
            analysis_id=analysis_id,
            summary=suggest_summary(solved.suggestions, solved.conflicts, verdicts),
            resources={"analysis": analysis_uri(analysis_id)} if analysis_id else {},
        )
        picture = None
        if annotate:
            picture = await self._suggest_picture(result, analysis, img, analysis_id)
        telemetry.record_suggestion(result, picture)
        if result.suggestions:
            await self._emit("suggestion.made", result.model_dump(mode="json"))
        return Outcome(result, picture)

    async def _emit_analysis(self, result: AnalyzeResult) -> None:
        """`analysis.completed`, and one `rule.violated` per broken rule, to the event sinks."""
        if not self.event_sinks:
            return
        body = result.model_dump(mode="json", exclude={"timings"})
        await self._emit("analysis.completed", body)
        for verdict in body["rules"]:
            if verdict["status"] == "violated":
                await self._emit(
                    "rule.violated",
                    {"analysis_id": result.analysis_id, "summary": result.summary, "image": body["image"]}
                    | {"rule": verdict, "resources": body["resources"]},
                )

    async def _suggest_picture(
        self, result: SuggestResult, analysis: Analysis, img: LoadedImage | None, analysis_id: str | None
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
        moves = [s.model_dump(mode="json") for s in result.suggestions]

        def draw() -> Picture:
            drawn = draw_suggestions(base, analysis.scene, moves, max_side=self.settings.annotated_max_side)
            data, mime = encode_image(drawn, self.settings)
            return Picture(data, mime)

        return await asyncio.to_thread(draw)
