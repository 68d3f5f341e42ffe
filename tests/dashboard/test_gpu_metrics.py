"""GPU numbers on /metrics and the dashboard: present once the models run on CUDA.

Skipped without a GPU (CI has none); run it on a lent GPU machine beside tests/engine/test_gpu.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mugpos.settings import Settings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.anyio,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


async def test_gpu_memory_reaches_metrics_and_snapshot(tmp_path: Path) -> None:
    from mugpos import telemetry
    from mugpos.dashboard.snapshot import refresh_gauges, snapshot
    from mugpos.operations import Mugpos

    picture = tmp_path / "desk.png"
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).resize((640, 480)).save(picture)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        device="cuda:0", detector_weights="yolov8n.yaml", data_dir=tmp_path / "d",
        allowed_dirs=[tmp_path], embedder="none", rules_llm=None,
    )  # fmt: skip
    app = Mugpos(settings)
    try:
        await app.analyze(str(picture), use_saved_rules=False)
        snap = await snapshot(app)
        gpu = snap["gpu"]
        assert gpu and gpu[0]["device"] == "cuda:0"
        assert 0 < gpu[0]["allocated"] <= gpu[0]["reserved"] <= gpu[0]["used"] <= gpu[0]["total"]
        refresh_gauges(snap)
        text = telemetry.render().decode()
        assert 'mugpos_gpu_memory_bytes{device="cuda:0",kind="total"}' in text
        assert "mugpos_models_ready 1.0" in text
    finally:
        await app.aclose()
