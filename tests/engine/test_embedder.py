"""The open_clip embedder on a tiny random architecture: shapes, norms, determinism, cache, advisories."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mugpos.engine.embedder import CUP_PROMPTS, Embedder
from mugpos.errors import ConfigError, ModelError
from mugpos.settings import Settings


@pytest.fixture(scope="module")
def embedder(tiny_clip: str) -> Embedder:
    e = Embedder(Settings(_env_file=None, clip_model=tiny_clip, clip_pretrained="none", device="cpu"))
    e.load()
    return e


def _img(seed: int, size: tuple[int, int] = (80, 60)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_image_embeddings(embedder: Embedder) -> None:
    imgs = [_img(0), _img(1, (30, 90)), _img(0)]
    emb = embedder.embed_images(imgs)
    assert emb.shape == (3, embedder.dim) and emb.dtype == np.float32 and embedder.dim == 32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-5)  # same input, same embedding
    assert not np.allclose(emb[0], emb[1], atol=1e-3)
    # batching does not change the answer
    np.testing.assert_allclose(embedder.embed_images([imgs[1]])[0], emb[1], atol=1e-4)
    assert embedder.embed_images([]).shape == (0, 32)
    assert embedder.identity == "mugpos-tiny-test/random-init" and embedder.loaded


def test_text_embeddings_are_cached(embedder: Embedder) -> None:
    hits, misses = embedder.text_cache_hits, embedder.text_cache_misses
    a = embedder.embed_texts(["a red mug", "a laptop", "a red mug"])
    assert a.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a[0], a[2])
    assert embedder.text_cache_misses - misses == 2 and embedder.text_cache_hits - hits == 1
    b = embedder.embed_texts(["a laptop"])
    assert embedder.text_cache_hits - hits == 2 and embedder.text_cache_misses - misses == 2
    np.testing.assert_array_equal(b[0], a[1])
    np.testing.assert_allclose(embedder.embed_texts_uncached(["a laptop"])[0], a[1], atol=1e-5)


def test_text_cache_is_bounded(tiny_clip: str) -> None:
    e = Embedder(
        Settings(_env_file=None, clip_model=tiny_clip, clip_pretrained="none", device="cpu"),
        text_cache_size=3,
    )
    e.load()
    e.embed_texts([f"text {i}" for i in range(10)])
    assert len(e._text_cache) == 3


def test_advisories(embedder: Embedder) -> None:
    crops = embedder.embed_images([_img(3), _img(4), _img(5)])
    adv = embedder.advisories(crops)
    assert len(adv) == 3
    for a in adv:
        assert a.label in CUP_PROMPTS and 1 / len(CUP_PROMPTS) <= a.score <= 1.0
    # a crop embedding equal to a prompt's text embedding is advised as that prompt
    target = embedder.embed_texts([f"a photo of a {CUP_PROMPTS[2]}."])
    assert embedder.advisories(target)[0].label == CUP_PROMPTS[2]
    assert embedder.advisories(np.zeros((0, 32), dtype=np.float32)) == []
    with pytest.raises(ModelError):
        embedder.advisories(np.ones((2, 7), dtype=np.float32))


def test_unknown_model_and_bad_tag_are_config_errors(tiny_clip: str, tmp_path: Path) -> None:
    for kw, needle in (
        ({"clip_model": "no-such-model"}, "MUGPOS_CLIP_MODEL"),
        ({"clip_model": tiny_clip, "clip_pretrained": "not-a-tag"}, "MUGPOS_CLIP_PRETRAINED"),
        (
            {"clip_model": tiny_clip, "clip_pretrained": str(tmp_path / "missing.pt")},
            "MUGPOS_CLIP_PRETRAINED",
        ),
    ):
        with pytest.raises(ConfigError) as ei:
            Embedder(Settings(_env_file=None, device="cpu", **kw)).load()
        assert needle in ei.value.message


def test_pretrained_tag_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as ei:
        Embedder(
            Settings(_env_file=None, clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k", device="cpu")
        ).load()
    assert time.monotonic() - t0 < 60  # a bound against hanging, not a performance assertion
    assert "MUGPOS_CLIP_PRETRAINED" in ei.value.message and "MUGPOS_EMBEDDER=none" in ei.value.hint


def test_local_checkpoint_and_corrupt_checkpoint(embedder: Embedder, tiny_clip: str, tmp_path: Path) -> None:
    import torch

    ckpt = tmp_path / "tiny.pt"
    torch.save(embedder._model.state_dict(), ckpt)
    e = Embedder(Settings(_env_file=None, clip_model=tiny_clip, clip_pretrained=str(ckpt), device="cpu"))
    e.load()
    assert e.identity.startswith(f"{tiny_clip}/tiny.pt@")
    img = [_img(9)]
    np.testing.assert_allclose(e.embed_images(img), embedder.embed_images(img), atol=1e-5)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage" * 50)
    with pytest.raises(ModelError):
        Embedder(
            Settings(_env_file=None, clip_model=tiny_clip, clip_pretrained=str(bad), device="cpu")
        ).load()


def test_not_loaded() -> None:
    with pytest.raises(ModelError, match="not loaded"):
        Embedder(Settings(_env_file=None, device="cpu")).embed_texts(["x"])
