"""A corrupt or truncated weight file: a clear error to every caller, a failed status, never a hang."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mugpos.errors import MugposError
from mugpos.operations import Mugpos

pytestmark = pytest.mark.anyio


def _truncated_onnx(tmp_path: Path, test_data: Path) -> Path:
    real = (test_data / "models" / "yolov8n_int8.onnx").read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(real[: len(real) // 3])
    return bad


def _garbage(tmp_path: Path, name: str) -> Path:
    bad = tmp_path / name
    bad.write_bytes(b"this is not a model\x00\xff" * 64)
    return bad


@pytest.mark.parametrize("kind", ["truncated.onnx", "garbage.onnx", "garbage.pt", "empty.pt"])
async def test_corrupt_weights_give_a_clear_error(
    kind: str, tmp_path: Path, test_data: Path, make_settings
) -> None:
    if kind == "truncated.onnx":
        weights = _truncated_onnx(tmp_path, test_data)
    elif kind == "empty.pt":
        weights = tmp_path / "empty.pt"
        weights.write_bytes(b"")
    else:
        weights = _garbage(tmp_path, kind)
    app = Mugpos(make_settings(detector_weights=str(weights)))
    coffee = str(test_data / "photos" / "coffee.png")
    try:
        for _ in range(2):  # the first caller and a later one get the same clear answer
            with pytest.raises(MugposError) as info:
                async with asyncio.timeout(60):
                    await app.analyze(coffee, use_saved_rules=False, store=False, annotate=False)
            err = info.value
            assert err.code in {"model_error", "config_error"}, err.to_dict()
            assert err.hint, "a corrupt model must say what to do"
            assert "Traceback" not in err.message and len(err.message) < 1000
            assert weights.name in err.message, "the error must name the file to replace"
        status = await app.status()
        assert status.models["ready"] is False and status.models["stage"] == "failed"
        assert any(d.startswith("models:") for d in status.degraded), status.degraded
    finally:
        await app.aclose()
