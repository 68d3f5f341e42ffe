"""Canvas buckets for batching and the exact mapping of boxes back to the picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mugpos.engine.letterbox import PAD_VALUE, canvas_shape, fit, unfit
from mugpos.scene.model import Detection


@pytest.mark.parametrize(
    ("size", "canvas"),
    [((640, 480), (640, 480)), ((480, 640), (480, 640)), ((640, 427), (640, 480)), ((600, 400), (640, 480)),
     ((4032, 3024), (640, 480)), ((1920, 1080), (640, 384)), ((500, 500), (640, 640)), ((1000, 10), (640, 384))],
)  # fmt: skip
def test_pictures_fall_into_few_canvas_shapes(size: tuple[int, int], canvas: tuple[int, int]) -> None:
    cw, ch, scale = canvas_shape(*size, 640)
    assert (cw, ch) == canvas
    assert max(size) * scale == pytest.approx(640)
    assert round(size[0] * scale) <= cw and round(size[1] * scale) <= ch


def test_fit_pads_bottom_right_and_unfit_maps_boxes_back() -> None:
    img = Image.new("RGB", (1200, 800), (10, 200, 30))
    fitted = fit(img, 640)
    assert fitted.array.shape == (480, 640, 3) and fitted.array.dtype == np.uint8
    assert tuple(fitted.array[0, 0]) == (10, 200, 30)
    assert tuple(fitted.array[-1, -1]) == (PAD_VALUE,) * 3  # 800 * 640/1200 = 427 rows of picture
    on_canvas = Detection(label="cup", box=(64.0, 32.0, 128.0, 96.0), confidence=0.9)
    back = unfit([on_canvas], fitted)[0]
    assert back.box == pytest.approx((120.0, 60.0, 240.0, 180.0), abs=0.05)
    assert back.confidence == 0.9 and back.label == "cup"
    in_padding = Detection(label="cup", box=(10.0, 470.0, 20.0, 479.0))
    assert unfit([in_padding], fitted) == []  # lies wholly below the picture: dropped


def test_same_size_picture_is_not_copied() -> None:
    img = Image.new("RGB", (640, 480))
    fitted = fit(img, 640)
    assert fitted.scale == 1.0 and fitted.array.shape == (480, 640, 3)
