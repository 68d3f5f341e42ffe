"""Annotated pictures: drawn where the objects are, decodable, and capped in size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mugpos.engine.annotate import MUG, TARGET, VIOLATION, draw_analysis, draw_suggestions, encode_image
from mugpos.scene.geometry import mug_position
from mugpos.scene.model import Scene
from mugpos.scene.scale import estimate_scale
from mugpos.settings import Settings

SCENE = Scene.model_validate(
    {
        "image": {"width": 1600, "height": 1000},
        "px_per_cm": 10.0,
        "objects": [
            {"id": "cup-1", "label": "cup", "box": [1020, 400, 1100, 480], "confidence": 0.91},
            {"id": "laptop-1", "label": "laptop", "box": [600, 350, 1000, 650]},
            {"id": "table-1", "label": "dining table", "box": [50, 200, 1550, 980]},
        ],
    }
)


def _grey() -> Image.Image:
    return Image.new("RGB", (1600, 1000), (128, 128, 128))


def _close(px: tuple[int, ...], colour: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(px[:3], colour, strict=True))


def test_draw_analysis_marks_mugs_and_violations() -> None:
    scale = estimate_scale(SCENE)
    mugs = [mug_position(SCENE, m, scale) for m in SCENE.mugs]
    out = draw_analysis(_grey(), SCENE, mugs, highlight_ids={"laptop-1"}, notes={"cup-1": "too close"})
    assert out.size == (1600, 1000) and out.mode == "RGB"
    # mug outline in the mug colour on its right edge, violation outline in red on the laptop's right edge
    assert _close(out.getpixel((1099, 460)), MUG)
    assert _close(out.getpixel((999, 600)), VIOLATION)
    # untouched background stays untouched and the source image is not modified
    assert out.getpixel((300, 900)) == (128, 128, 128)
    assert _grey().getpixel((1099, 460)) == (128, 128, 128)
    arr = np.asarray(out)
    assert (np.abs(arr.astype(int) - 128).sum(axis=2) > 60).sum() > 2000  # labels and boxes were drawn


def test_draw_suggestions_draws_target_and_arrow() -> None:
    out = draw_suggestions(
        _grey(),
        SCENE,
        [("cup-1", (1020, 400, 1100, 480), (1200, 400, 1280, 480), "Move the mug 18 cm right")],
    )
    assert out.size == (1600, 1000)
    mid = out.getpixel((1150, 440))  # on the arrow between the two centres
    assert _close(mid, TARGET, 60)
    inside_ghost = out.getpixel((1240, 440))
    assert inside_ghost != (128, 128, 128)  # tinted ghost fill


@pytest.mark.parametrize(
    ("fmt", "mime", "pil"),
    [("webp", "image/webp", "WEBP"), ("jpeg", "image/jpeg", "JPEG"), ("png", "image/png", "PNG")],
)
def test_encode_image_is_decodable_and_capped(fmt: str, mime: str, pil: str) -> None:
    s = Settings(_env_file=None, annotated_format=fmt, annotated_max_side=512)
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 1600, 3), dtype=np.uint8))
    data, got = encode_image(draw_analysis(big, SCENE, []), s)
    assert got == mime
    im = Image.open(io.BytesIO(data))
    assert im.format == pil and im.size == (512, 320)
    small, _ = encode_image(big, s, max_side=100)
    assert max(Image.open(io.BytesIO(small)).size) == 100
    tiny = Image.new("RGB", (50, 40))
    assert Image.open(io.BytesIO(encode_image(tiny, s)[0])).size == (50, 40)  # never upscaled


def test_real_photo_annotation(data_dir) -> None:  # type: ignore[no-untyped-def]
    img = Image.open(data_dir / "photos" / "coffee.png").convert("RGB")
    scene = Scene.model_validate(
        {
            "image": {"width": 600, "height": 400},
            "objects": [
                {"label": "cup", "box": [170, 17, 424, 325], "confidence": 0.93},
                {"label": "dining table", "box": [0.7, 0.7, 585.9, 396.2], "confidence": 0.73},
            ],
        }
    )
    scale = estimate_scale(scene)
    out = draw_analysis(img, scene, [mug_position(scene, scene.mugs[0], scale)])
    data, mime = encode_image(out, Settings(_env_file=None))
    assert mime == "image/jpeg" and len(data) < 200_000  # the default: fast to encode, compact
    assert Image.open(io.BytesIO(data)).size == (600, 400)


def test_drawn_once_at_the_size_it_is_sent() -> None:
    """With max_side the picture is shrunk first and the boxes scaled onto it (no second resize)."""
    scale = estimate_scale(SCENE)
    mugs = [mug_position(SCENE, m, scale) for m in SCENE.mugs]
    out = draw_analysis(_grey(), SCENE, mugs, max_side=800)
    assert out.size == (800, 500)
    assert _close(out.getpixel((549, 230)), MUG)  # the cup's right edge, 1100 -> 550
    assert out.getpixel((150, 450)) == (128, 128, 128)
    data, _ = encode_image(out, Settings(_env_file=None, annotated_max_side=800))  # type: ignore[call-arg]
    assert Image.open(io.BytesIO(data)).size == (800, 500)
    moved = draw_suggestions(
        _grey(), SCENE, [("cup-1", (1020, 400, 1100, 480), (200, 400, 280, 480), "x")], max_side=800
    )
    assert moved.size == (800, 500) and _close(moved.getpixel((549, 230)), MUG)
    assert draw_analysis(Image.new("RGB", (300, 200)), SCENE, [], max_side=800).size == (
        300,
        200,
    )  # never upscaled


def test_a_mug_filling_the_photo_keeps_its_tag_clear_of_the_legend() -> None:
    """The example photo: the mug's box reaches the top, where the legend's panel goes. Its tag must
    not land under the panel (it did: only '-1' showed) nor vanish: it goes below the box."""
    from PIL import Image, ImageDraw

    from mugpos.engine.moves_picture import MUG, Labels, _legend_layout

    img = Image.new("RGB", (600, 400))
    legend = _legend_layout(img, ["1. Move the mug 4 cm (2 in) to the left, staying on the table"], 16, True)
    assert legend is not None
    band, mug = legend[1], (170.0, 16.0, 423.0, 321.0)

    def placed(anchors: list[tuple[float, float]]) -> tuple[float, float, float, float] | None:
        labels = Labels(ImageDraw.Draw(img), 600, 400, 16)
        labels.block(band)
        labels.block(mug)
        return labels.put(anchors, "1 cup-1", MUG)

    r = placed([(296.5, 16.0), (296.5, 321.0)])  # above the box, then below it
    assert r is not None and r[1] >= band[3]
    assert r[2] <= mug[0] or r[0] >= mug[2] or r[1] >= mug[3]  # beside or below the mug, not on it


def test_tags_on_a_busy_table_do_not_print_over_each_other() -> None:
    """coco 450: three cups and a wine glass along the top border; their tags all sat on the same
    row, one over the other. Each tag now takes a spot no other tag holds."""
    from PIL import ImageDraw

    from mugpos.engine.annotate import _label

    img = Image.new("RGB", (640, 480), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    taken: list[tuple[float, float, float, float]] = []
    for x in (563, 408, 201):
        _label(draw, (x, 1), "cup | back | no table edge in view", MUG, 16, 640, taken)
    assert len(taken) == 3
    for i, a in enumerate(taken):
        for b in taken[i + 1 :]:
            assert a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3], (a, b)
