"""One `Analysis` from the pipeline to storage and back: a stored analysis checked later keeps its
scale (value, source, uncertainty) and its provenance, and is never measured again."""

from __future__ import annotations

from pathlib import Path

import pytest

from mugpos.engine.analysis import Analysis
from mugpos.operations import Mugpos
from mugpos.results import AnalyzeResult
from mugpos.settings import Settings

RULE = "keep mugs at least 5 cm from the table edge"


@pytest.mark.anyio
async def test_stored_analysis_keeps_scale_and_provenance(
    tmp_path: Path, test_data: Path, onnx_weights: Path, coffee_png: Path
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        detector_weights=str(onnx_weights),
        embedder="none",
        data_dir=tmp_path / "data",
        allowed_dirs=[test_data],
        threads=2,
    )
    app = Mugpos(settings)
    try:
        made = (await app.analyze(str(coffee_png), rules=[RULE], use_saved_rules=False)).result
        assert isinstance(made, AnalyzeResult) and isinstance(made, Analysis)
        assert made.scale.source == "estimated" and made.scale.uncertainty_pct > 0
        assert made.models["detector"] and made.models["detector"].startswith("yolov8n_int8.onnx@")
        assert made.image.sha256 and made.image.source == "path"
        assert "embedding" not in made.model_dump()  # results stay small; the layout store keeps it

        checked = await app.check(analysis_id=made.analysis_id, rules=[RULE], use_saved_rules=False)
        assert checked.scale == made.scale  # not re-measured as "given" with 0 % uncertainty
        assert [v.status for v in checked.rules] == [v.status for v in made.rules]
        suggested = (await app.suggest(analysis_id=made.analysis_id, rules=[RULE], annotate=False)).result
        assert suggested.scale == made.scale
    finally:
        await app.aclose()

    again = Mugpos(settings)  # a new process reads it from the store, same type, same values
    try:
        stored = await again.get_analysis(made.analysis_id)
        assert type(stored) is AnalyzeResult
        assert stored.model_dump(exclude={"timings"}) == made.model_dump(exclude={"timings"})
        checked = await again.check(analysis_id=made.analysis_id, rules=[RULE], use_saved_rules=False)
        assert checked.scale == made.scale
    finally:
        await again.aclose()
