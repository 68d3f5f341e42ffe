"""Analyse a photo, keep it, and check or suggest against a photo, a stored analysis or a scene."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mugpos.engine.pipeline import SceneAnalysis
from mugpos.errors import MugposError, SceneError
from mugpos.operations.core import (
    Core,
    Outcome,
    Picture,
    Progress,
    _evaluate,
    _first_error,
    _ms,
    new_analysis_id,
)
from mugpos.results import AnalyzeResult, CheckResult, ImageRef, SuggestResult
from mugpos.results.summaries import analysis_summary, suggest_summary
from mugpos.results.uris import analysis_uri, annotated_uri, layout_uri
from mugpos.scene.model import Scene

if TYPE_CHECKING:
    from mugpos.engine.images import LoadedImage

log = logging.getLogger("mugpos")


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
        summary = analysis_summary(analysis, verdicts)
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
            summary=suggest_summary(solved.suggestions, solved.conflicts, verdicts),
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
        moves = [s.model_dump(mode="json") for s in result.suggestions]

        def draw() -> Picture:
            data, mime = encode_image(draw_suggestions(base, analysis.scene, moves), self.settings)
            return Picture(data, mime)

        return await asyncio.to_thread(draw)
