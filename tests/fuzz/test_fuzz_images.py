"""The image loader on random and mutated bytes: it returns an RGB image or raises `ImageError`.

Anything else (a PIL exception, a ValueError, a MemoryError) would reach a caller as a traceback.
The seeds are real encodings of a real photo in every format the loader accepts.
"""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mugpos.engine.images import decode_image_bytes, load_image, read_image_bytes
from mugpos.errors import ImageError
from mugpos.settings import Settings

FUZZ = settings.get_profile("mugpos-fuzz")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # PIL narrates broken TIFF tags

# Small limits so a mutated header that claims a huge size is refused, not allocated.
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    max_image_bytes=256 * 1024,
    max_image_pixels=2_000_000,
    max_image_side=4000,
    allowed_dirs=[Path("/nonexistent-mugpos-fuzz")],
)


def _seeds() -> list[bytes]:
    from PIL import Image
    from tests_data import coffee_or_synthetic

    base = coffee_or_synthetic().resize((48, 32))
    out = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"),
                      ("WEBP", "RGB"), ("PNG", "LA"), ("PNG", "I;16"), ("TIFF", "CMYK")):  # fmt: skip
        im = base.convert(mode) if mode != "I;16" else base.convert("L").convert("I;16")
        buf = io.BytesIO()
        im.save(buf, fmt)
        out.append(buf.getvalue())
    assert all(isinstance(Image.open(io.BytesIO(b)).size, tuple) for b in out)
    return out


SEEDS = _seeds()


def _decode(data: bytes) -> None:
    try:
        image, fmt = decode_image_bytes(data, SETTINGS)
    except ImageError as e:
        assert e.code and e.message and e.hint is not None
        return
    assert image.mode == "RGB" and image.width > 0 and image.height > 0 and fmt


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        else:  # the size fields sit in the first bytes of every format: hit them often
            j = draw(st.integers(0, min(40, len(data) - 1)))
            data[j] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
    return bytes(data)


def test_seeds_decode() -> None:
    for seed in SEEDS:
        image, _ = decode_image_bytes(seed, SETTINGS)
        assert image.size == (48, 32) and image.mode == "RGB"


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_only_image_error(data: bytes) -> None:
    _decode(data)


@FUZZ
@given(mutated())
def test_mutated_images_only_image_error(data: bytes) -> None:
    _decode(data)


@FUZZ
@given(mutated(), st.sampled_from(["raw", "data-uri", "data-uri-plain", "urlsafe"]))
def test_mutated_images_through_every_text_encoding(data: bytes, how: str) -> None:
    if how == "raw":
        ref = base64.b64encode(data).decode()
    elif how == "urlsafe":
        ref = base64.urlsafe_b64encode(data).decode().rstrip("=")
    elif how == "data-uri":
        ref = "data:image/png;base64," + base64.b64encode(data).decode()
    else:
        from urllib.parse import quote_from_bytes

        ref = "data:image/png," + quote_from_bytes(data)
    try:
        loaded = asyncio.run(load_image(ref, SETTINGS))
    except ImageError as e:
        assert e.code
        return
    assert loaded.image.mode == "RGB" and len(loaded.sha256) == 64


@FUZZ
@given(st.text(max_size=300))
def test_any_text_reference_only_image_error(ref: str) -> None:
    """Arbitrary text as an image reference: a clean refusal, never a crash or a read outside."""
    if ref.strip().lower().startswith(("http://", "https://")):
        return  # URLs are fuzzed without the network in tests/security
    try:
        data, source = asyncio.run(read_image_bytes(ref, SETTINGS))
    except ImageError as e:
        assert e.code
        return
    # Only inline encodings can succeed: no allowed folder exists.
    assert source in ("base64", "data-uri") and isinstance(data, bytes)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_tiny_inputs(n: int) -> None:
    _decode(b"\x89PNG\r\n\x1a\n"[:n])
