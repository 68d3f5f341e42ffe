"""CLIP embeddings (open_clip) for layout search, and a zero-shot second opinion on each "cup".

The detector says "cup" for mugs, glasses, paper cups and bowls alike; CLIP compares each cup crop
with a few prompts and reports its best guess as an `Advisory`. Advice only: it never drops a cup.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mugpos.errors import ConfigError, ModelError
from mugpos.scene.model import Advisory

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from mugpos.settings import Settings

# What a COCO "cup" box may really hold; each label is read as "a photo of a <label>".
CUP_PROMPTS: tuple[str, ...] = (
    "coffee mug",
    "teacup",
    "glass",
    "paper cup",
    "travel mug",
    "wine glass",
    "bowl",
    "bottle",
    "jar",
    "vase",
)
_PROMPT_TEMPLATE = "a photo of a {}."
log = logging.getLogger(__name__)
_OFFLINE_HINT = (
    "Set MUGPOS_EMBEDDER=none to run without CLIP (no search by image or text), or set "
    "MUGPOS_CLIP_PRETRAINED to a local checkpoint, or go online once to download it."
)


class Embedder:
    """One open_clip model: image and text embeddings, L2-normalised, float32."""

    def __init__(self, settings: Settings, *, text_cache_size: int = 1024) -> None:
        self.settings = settings
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._device: str | None = None
        self._identity: str | None = None
        self._dim: int | None = None
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_cache_size = text_cache_size
        self.offline_reason: str | None = None
        self._lock = threading.Lock()
        self.text_cache_hits = 0
        self.text_cache_misses = 0

    # --- state ---------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = self.settings.resolved_device()
        return self._device

    @property
    def identity(self) -> str:
        if self._identity is None:
            raise ModelError("The embedder is not loaded yet.", hint="Call load() first.")
        return self._identity

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise ModelError("The embedder is not loaded yet.", hint="Call load() first.")
        return self._dim

    @property
    def half(self) -> bool:
        h = self.settings.half
        return h == "on" or (h == "auto" and self.device.startswith("cuda"))

    # --- loading -------------------------------------------------------------------------------

    def _pretrained(self, open_clip: Any) -> tuple[str | None, str]:
        """(value for open_clip, identity part) from MUGPOS_CLIP_PRETRAINED."""
        name, tag = self.settings.clip_model, self.settings.clip_pretrained.strip()
        if tag.lower() in ("", "none", "random"):
            return None, "random-init"
        path = Path(tag).expanduser()
        if path.is_file():
            h = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            return str(path), f"{path.name}@{h.hexdigest()[:12]}"
        if path.suffix.lower() in (".pt", ".pth", ".bin", ".safetensors") or os.sep in tag:
            raise ConfigError(
                f"The CLIP checkpoint {tag!r} does not exist (MUGPOS_CLIP_PRETRAINED).", hint=_OFFLINE_HINT
            )
        known = open_clip.list_pretrained_tags_by_model(name)
        if tag not in known:
            raise ConfigError(
                f"{tag!r} is not a pretrained tag of {name} (MUGPOS_CLIP_PRETRAINED); "
                f"known: {', '.join(known) or 'none'}.",
                hint="Pick one of the known tags, a local checkpoint path, or 'none' for random weights.",
            )
        from mugpos.engine.fetch import in_hf_cache, use_local_caches_only, why_offline

        self.offline_reason = why_offline("huggingface.co")
        if self.offline_reason is not None:
            # Load from the local cache or fail at once, instead of ~50 s of retries.
            use_local_caches_only()
        elif not in_hf_cache(name, tag):
            log.warning(
                "downloading the CLIP weights %s/%s from huggingface.co (first run only, hundreds of MB)",
                name,
                tag,
            )
        return tag, tag

    def _fail_fast_offline(self) -> None:
        """Offline with a pretrained tag that is not in the local cache: fail before importing torch."""
        from mugpos.engine.fetch import in_hf_cache, why_offline

        name, tag = self.settings.clip_model, self.settings.clip_pretrained.strip()
        if tag.lower() in ("", "none", "random") or Path(tag).expanduser().exists() or os.sep in tag:
            return
        if not _builtin_model(name):
            return  # an unknown model name: the full load says so, naming MUGPOS_CLIP_MODEL
        why = why_offline("huggingface.co")
        if why is not None and not in_hf_cache(name, tag):
            self.offline_reason = why
            raise ConfigError(
                f"the CLIP weights {name}/{tag} (MUGPOS_CLIP_PRETRAINED) are not on this machine and "
                f"cannot be downloaded: {why}",
                hint=_OFFLINE_HINT,
            )

    def load(self) -> None:
        """Blocking: build the model, its preprocessing and tokenizer on the configured device."""
        if self._model is not None:
            return
        self._fail_fast_offline()
        try:
            import open_clip
            import torch
        except ImportError as e:  # pragma: no cover - a broken install
            raise ConfigError(
                f"open_clip is not installed: {e}",
                hint="pip install open-clip-torch, or set MUGPOS_EMBEDDER=none.",
            ) from None
        name = self.settings.clip_model
        if name not in open_clip.list_models():
            raise ConfigError(
                f"Unknown CLIP model {name!r} (MUGPOS_CLIP_MODEL).",
                hint="Use an open_clip model name such as ViT-B-32, or set MUGPOS_EMBEDDER=none.",
            )
        pretrained, ident = self._pretrained(open_clip)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=self.device
            )
        except Exception as e:
            reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            if pretrained is not None and Path(pretrained).is_file():
                raise ModelError(
                    f"Could not load the CLIP checkpoint {Path(pretrained).name!r}: {reason}",
                    hint="The file may be corrupt or for another architecture (MUGPOS_CLIP_MODEL).",
                ) from None
            if self.offline_reason is not None:
                raise ConfigError(
                    f"the CLIP weights {name}/{pretrained} (MUGPOS_CLIP_PRETRAINED) are not on this "
                    f"machine and cannot be downloaded: {self.offline_reason}",
                    hint=_OFFLINE_HINT,
                ) from None
            raise ConfigError(
                f"Could not get the CLIP weights {name}/{pretrained} (MUGPOS_CLIP_PRETRAINED): {reason}",
                hint=_OFFLINE_HINT,
            ) from None
        model.eval()
        if self.half:
            model = model.half()
        self._tokenizer = open_clip.get_tokenizer(name)
        self._preprocess = preprocess
        cfg = open_clip.get_model_config(name) or {}
        with torch.inference_mode():
            probe = model.encode_text(self._tokenizer(["a"]).to(self.device))
        self._dim = int(cfg.get("embed_dim") or probe.shape[-1])
        self._model = model
        self._identity = f"{name}/{ident}"

    def _require(self) -> Any:
        if self._model is None:
            raise ModelError("The embedder is not loaded yet.", hint="Call load() first.")
        return self._model

    # --- embeddings ----------------------------------------------------------------------------

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        """(N, dim) float32, unit length; one forward pass for the whole list."""
        import numpy as np
        import torch

        model = self._require()
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.stack([self._preprocess(im.convert("RGB")) for im in images]).to(self.device)
        if self.half:
            batch = batch.half()
        with torch.inference_mode():
            feats = model.encode_image(batch)
        return _normalise(feats)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(N, dim) float32, unit length; repeated texts come from an LRU cache."""
        import numpy as np
        import torch

        model = self._require()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
            self.text_cache_hits += len(texts) - len(missing)
            self.text_cache_misses += len(missing)
        if missing:
            tokens = self._tokenizer(missing).to(self.device)
            with torch.inference_mode():
                vecs = _normalise(model.encode_text(tokens))
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self._text_cache[t] = v
        with self._lock:
            out = []
            for t in texts:
                v = self._text_cache.get(t)
                if v is None:  # evicted by a concurrent caller in between; recompute alone
                    v = self.embed_texts_uncached([t])[0]
                else:
                    self._text_cache.move_to_end(t)
                out.append(v)
            while len(self._text_cache) > self._text_cache_size:
                self._text_cache.popitem(last=False)
        return np.stack(out).astype(np.float32, copy=False)

    def embed_texts_uncached(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._require()
        with torch.inference_mode():
            return _normalise(model.encode_text(self._tokenizer(texts).to(self.device)))

    def advisories(self, crop_embeddings: np.ndarray) -> list[Advisory]:
        """Zero-shot over CUP_PROMPTS: the best label and its softmax probability, per crop."""
        import numpy as np

        model = self._require()
        crops = np.asarray(crop_embeddings, dtype=np.float32)
        if crops.size == 0:
            return []
        if crops.ndim != 2 or crops.shape[1] != self.dim:
            raise ModelError(
                f"Crop embeddings must be (N, {self.dim}), got {crops.shape}.",
                hint="Pass the output of embed_images.",
            )
        texts = self.embed_texts([_PROMPT_TEMPLATE.format(p) for p in CUP_PROMPTS])
        scale = float(model.logit_scale.exp().item()) if hasattr(model, "logit_scale") else 100.0
        logits = scale * crops @ texts.T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        best = probs.argmax(axis=1)
        return [
            Advisory(label=CUP_PROMPTS[int(k)], score=round(float(min(max(probs[i, k], 0.0), 1.0)), 4))
            for i, k in enumerate(best)
        ]


def _normalise(feats: Any) -> np.ndarray:
    import numpy as np

    arr = feats.float().cpu().numpy().astype(np.float32, copy=False)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _builtin_model(name: str) -> bool:
    """Whether open_clip ships a config for `name`, found without importing open_clip (and torch)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "model_configs" / f"{name}.json").is_file():
            return True
    return False
