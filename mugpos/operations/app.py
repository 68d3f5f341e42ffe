"""`Mugpos`: the one implementation of every operation; the CLI, the MCP tools and the RunPod worker call it.

It wires the engine (models, batching, cache), the rules (interpreter, evaluator, solver, store) and
the memory (layout store, blob store); each family of operations is a mixin in its own module.
"""

from __future__ import annotations

from typing import Any

from mugpos import __version__
from mugpos.operations.analysis import AnalysisOps
from mugpos.operations.rule_ops import RuleOps
from mugpos.operations.search import SearchOps
from mugpos.results import EngineStatus


class Mugpos(RuleOps, AnalysisOps, SearchOps):
    """Every operation over one set of settings, models and stores."""

    async def status(self, *, probe: bool = False) -> EngineStatus:
        """What is running and what is degraded. `probe=True` (the CLI's `mugpos status`) also opens
        the stores and asks, without loading anything, whether the model weights can be had."""
        eng = self.engine.status()
        stores: dict[str, Any] = {}
        degraded: list[str] = []
        if probe:
            degraded.extend(await self._probe(eng))
        for name, store in (("rules", self._rules), ("layouts", self._layouts), ("blobs", self._blobs)):
            health = store.status() if store is not None else None
            stores[name] = health.model_dump(mode="json") if health is not None else {"opened": False}
            if health is not None and (problem := health.problem()):
                degraded.append(problem)
        journal = self._keeper.status() if self._keeper is not None else None
        stores["journal"] = journal.model_dump(mode="json") if journal is not None else {"opened": False}
        if journal is not None and (problem := journal.problem()):
            degraded.append(problem)
        tiers = self._cache.status() if self._cache is not None else {}
        cache = {tier: health.model_dump(mode="json") for tier, health in tiers.items()}
        degraded.extend(p for health in tiers.values() if (p := health.problem()))
        if eng["error"]:
            degraded.append(f"models: {eng['error']}")
        cpu = eng["cpu"]
        if cpu["last_error"] and not cpu["processes"]:  # threads do the work: same answers, less concurrency
            degraded.append(f"CPU stages: {cpu['last_error']} (running in threads)")
        off: list[str] = []
        if self.settings.embedder == "none":  # the operator's choice: off, not degraded
            off.append("embedder (MUGPOS_EMBEDDER=none): search by image and by text is unavailable")
        elif "disabled" in eng["embedder"]["note"] and not any(d.startswith("embedder") for d in degraded):
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
            cpu=cpu,
            degraded=degraded,
            off=off,
        )

    async def _probe(self, eng: dict[str, Any]) -> list[str]:
        """Open every store (a store that falls back says so) and check the weights on disk/online."""
        import asyncio

        from mugpos.engine.fetch import clip_weights_status, detector_weights_status

        found: list[str] = []
        for name, opener in (
            ("rules", self._rule_store),
            ("layouts", self._layout_store),
            ("blobs", self._blob_store),
        ):
            try:
                store = await opener()
                if name == "rules":
                    await store.list()
                elif name == "layouts":
                    await store.count()
            except Exception as exc:
                found.append(f"{name} store: {getattr(exc, 'message', None) or type(exc).__name__}")
        if not eng["detector"]["warm"]:
            ok, how = await asyncio.to_thread(detector_weights_status, self.settings)
            eng["detector"]["available"] = how
            if not ok:
                found.append(f"detector: {how}")
        if not eng["embedder"]["warm"] and self.settings.embedder != "none":
            ok, how = await asyncio.to_thread(clip_weights_status, self.settings)
            eng["embedder"]["available"] = how
            if not ok:
                found.append(f"embedder: {how}")
        return found

    async def aclose(self) -> None:
        if self._keeper is not None:  # the stores first receive what was journalled
            await self._keeper.aclose()
        await self.engine.aclose()
        for edge in (self._cache, self._rules, self._layouts, self._blobs):
            if edge is not None:
                await edge.aclose()
