"""A real photo for the fuzz seeds when the shared data is there, a synthetic one otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def coffee_or_synthetic() -> Image.Image:
    data = Path(os.environ.get("MUGPOS_TEST_DATA") or REPO.parent / "shared" / "data")
    photo = data / "photos" / "coffee.png"
    if photo.is_file():
        return Image.open(photo).convert("RGB")
    import numpy as np

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
