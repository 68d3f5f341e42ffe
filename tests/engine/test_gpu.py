"""The CUDA path: fp16 detector and embedder, batching and the engine on the device.

Skipped without a GPU (CI has none); `benchmarks/gpu.sh` runs it on a lent H100/H200.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mugpos.settings import Settings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A deterministic textured picture (the shared photos do not travel to the GPU machine)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.Resampling.BILINEAR)


def cuda_settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {
        "device": "cuda:0", "detector_weights": "yolov8n.yaml", "confidence": 0.01, "data_dir": tmp_path / "d",
        "allowed_dirs": [tmp_path], "embedder": "none",
    }  # fmt: skip
    base.update(kw)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


def test_detector_runs_fp16_on_cuda_and_batches_match_singles(tmp_path: Path) -> None:
    from mugpos.engine.detector import Detector

    torch.manual_seed(0)
    det = Detector(cuda_settings(tmp_path))
    det.load()
    assert det.device.startswith("cuda") and det.half
    frames = [np.asarray(photo(i)) for i in range(8)]
    batched = det.detect(frames)
    singles = [det.detect([f])[0] for f in frames]
    assert len(batched) == 8
    for b, s in zip(batched, singles, strict=True):
        top_b = sorted(b, key=lambda d: -d.confidence)[:5]
        top_s = sorted(s, key=lambda d: -d.confidence)[:5]
        assert [d.label for d in top_b] == [d.label for d in top_s]
        for x, y in zip(top_b, top_s, strict=True):
            assert np.allclose(x.box, y.box, atol=2.0)


def test_clip_embeddings_on_cuda_are_unit_length_and_batch_invariant(tmp_path: Path) -> None:
    from mugpos.engine.embedder import Embedder

    emb = Embedder(cuda_settings(tmp_path, embedder="clip", clip_model="ViT-B-32", clip_pretrained="none"))
    emb.load()
    assert emb.device.startswith("cuda")
    images = [photo(i, (320, 240)) for i in range(6)]
    batch = emb.embed_images(images)
    one = emb.embed_images(images[:1])
    assert batch.shape == (6, emb.dim)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-3)
    assert float(batch[0] @ one[0]) > 0.999
    text = emb.embed_texts(["a coffee mug on a desk"])
    assert np.isclose(np.linalg.norm(text[0]), 1.0, atol=1e-3)


def test_engine_serves_concurrent_analyses_in_shared_batches_on_cuda(tmp_path: Path) -> None:
    from mugpos.engine.images import LoadedImage
    from mugpos.engine.pipeline import Engine

    engine = Engine(cuda_settings(tmp_path, batch_max_wait_ms=20.0))

    def loaded(i: int) -> LoadedImage:
        im = photo(i)
        data = im.tobytes()
        return LoadedImage(image=im, data=data, sha256=hashlib.sha256(data).hexdigest(), source="path",
                           format="png", width=im.width, height=im.height)  # fmt: skip

    async def run() -> list[int]:
        try:
            results = await asyncio.gather(*(engine.analyze(loaded(i)) for i in range(32)))
            return [len(r.scene.objects) for r in results]
        finally:
            await engine.aclose()

    counts = asyncio.run(run())
    assert len(counts) == 32
    stats = engine.status()["batching"]["detector"]
    assert stats["items"] == 32 and stats["max_batch"] > 1
    assert engine.status()["device"].startswith("cuda")
