"""Image input: every source, every colour mode, and every refusal (issue 2, image parts of issue 8)."""

from __future__ import annotations

import base64
import io
import ipaddress
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import png_bytes
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image

from mugpos.engine import images
from mugpos.engine.images import decode_image_bytes, is_public_address, load_image
from mugpos.errors import AccessDenied, ImageError
from mugpos.settings import Settings

pytestmark = pytest.mark.anyio


def _rgb_at(im: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    assert im.mode == "RGB"
    return im.getpixel(xy)  # type: ignore[return-value]


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# --- sources ----------------------------------------------------------------------------------


async def test_path_inside_allowed_dir(settings: Settings) -> None:
    p = settings.allowed_dirs[0] / "red.png"
    p.write_bytes(png_bytes())
    li = await load_image(str(p), settings)
    assert (li.width, li.height, li.source, li.format) == (32, 24, "path", "png")
    assert _rgb_at(li.image, (5, 5)) == (200, 30, 40)
    assert li.data == p.read_bytes()
    import hashlib

    assert li.sha256 == hashlib.sha256(li.data).hexdigest()


async def test_real_photo_by_path(data_dir: Path) -> None:
    s = Settings(_env_file=None, allowed_dirs=[data_dir])
    li = await load_image(str(data_dir / "photos" / "coffee.png"), s)
    assert (li.width, li.height) == (600, 400)


async def test_data_uri_and_base64(settings: Settings) -> None:
    raw = png_bytes()
    b64 = base64.b64encode(raw).decode()
    li = await load_image(f"data:image/png;base64,{b64}", settings)
    assert li.source == "data-uri" and li.data == raw
    li = await load_image(b64, settings)
    assert li.source == "base64" and li.data == raw
    # line-wrapped base64 (as produced by `base64` on the command line) also works
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    assert (await load_image(wrapped, settings)).data == raw


async def test_resource_uri_uses_resolver(settings: Settings) -> None:
    raw = png_bytes()
    seen: list[str] = []

    async def resolver(uri: str) -> bytes:
        seen.append(uri)
        return raw

    li = await load_image("mugpos://analyses/abc/image", settings, resolver=resolver)
    assert li.source == "resource" and seen == ["mugpos://analyses/abc/image"]
    with pytest.raises(ImageError, match="resource URI"):
        await load_image("mugpos://analyses/abc/image", settings)


# --- colour modes ------------------------------------------------------------------------------


def test_rgba_composited_on_white(settings: Settings) -> None:
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    im.putpixel((1, 1), (255, 0, 0, 255))
    im.putpixel((2, 2), (0, 0, 255, 128))
    out, fmt = decode_image_bytes(_save(im, "PNG"), settings)
    assert fmt == "png" and out.mode == "RGB"
    assert _rgb_at(out, (0, 0)) == (255, 255, 255)  # fully transparent -> white, not red or black
    assert _rgb_at(out, (1, 1)) == (255, 0, 0)
    r, g, b = _rgb_at(out, (2, 2))
    assert abs(r - 127) <= 2 and abs(g - 127) <= 2 and b == 255


def test_la_grayscale_palette(settings: Settings) -> None:
    la = Image.new("LA", (4, 4), (100, 0))
    la.putpixel((0, 0), (100, 255))
    out, _ = decode_image_bytes(_save(la, "PNG"), settings)
    assert _rgb_at(out, (0, 0)) == (100, 100, 100) and _rgb_at(out, (1, 1)) == (255, 255, 255)

    out, _ = decode_image_bytes(_save(Image.new("L", (4, 4), 77), "PNG"), settings)
    assert _rgb_at(out, (3, 3)) == (77, 77, 77)

    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    out, _ = decode_image_bytes(_save(pal, "PNG"), settings)
    assert _rgb_at(out, (0, 0)) == (10, 200, 30)

    pal.putpixel((0, 0), 0)
    out, fmt = decode_image_bytes(_save(pal, "GIF", transparency=0), settings)
    assert fmt == "gif"
    assert _rgb_at(out, (0, 0)) == (255, 255, 255)  # transparent index -> white
    assert _rgb_at(out, (1, 1)) == (10, 200, 30)


def test_16bit_scaled_not_clipped(settings: Settings) -> None:
    arr = np.array([[0, 257 * 128, 65535, 1000]], dtype=np.uint16)
    out, _ = decode_image_bytes(_save(Image.fromarray(arr), "PNG"), settings)
    px = [_rgb_at(out, (x, 0))[0] for x in range(4)]
    assert px == [0, 128, 255, 4]  # 1000/257 = 3.9 -> 4; clipping would give 255


def test_cmyk_jpeg(settings: Settings) -> None:
    im = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out, fmt = decode_image_bytes(_save(im, "JPEG", quality=95), settings)
    assert fmt == "jpeg"
    r, g, b = _rgb_at(out, (8, 8))
    assert r > 230 and g < 30 and b < 30


def test_exif_orientation_applied(settings: Settings) -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out, _ = decode_image_bytes(_save(im, "JPEG", exif=exif.tobytes(), quality=95), settings)
    assert out.size == (20, 40)
    r, _, b = _rgb_at(out, (10, 3))  # the left strip is now at the top
    assert r > 200 and b < 60


def test_webp_and_bmp(settings: Settings) -> None:
    for fmt in ("WEBP", "BMP", "TIFF"):
        out, got = decode_image_bytes(
            _save(Image.new("RGB", (8, 8), (1, 2, 3)), fmt, lossless=True), settings
        )
        assert got == fmt.lower() and out.size == (8, 8)


# --- refusals: bytes ----------------------------------------------------------------------------


def _tiny_png_header(w: int, h: int) -> bytes:
    """A valid PNG signature + IHDR claiming w x h, and a few bytes of IDAT: a bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_image"),
        (b"hello, this is plainly text and not a picture at all", "not_an_image"),
        (png_bytes()[:60], "corrupt_image"),  # truncated inside the pixel data
        (png_bytes()[:40] + b"\0" * 30 + png_bytes()[70:], "corrupt_image"),  # corrupted
        (_tiny_png_header(50_000, 50_000), "image_too_large"),
        (_tiny_png_header(20_000, 100), "image_too_large"),  # side limit
    ],
    ids=["empty", "non-image", "truncated", "corrupt", "pixel-bomb", "too-wide"],
)
def test_bad_bytes_refused(settings: Settings, data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as ei:
        decode_image_bytes(data, settings)
    assert ei.value.code == code and ei.value.hint


def test_truncated_jpeg(settings: Settings) -> None:
    rng = np.random.default_rng(0)
    jpg = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageError) as ei:
        decode_image_bytes(jpg[: len(jpg) // 2], settings)
    assert ei.value.code == "corrupt_image"


def test_huge_bytes_refused_before_decode(settings: Settings) -> None:
    s = settings.model_copy(update={"max_image_bytes": 2048})
    with pytest.raises(ImageError) as ei:
        decode_image_bytes(b"\x89PNG" + b"\0" * 5000, s)
    assert ei.value.code == "image_too_large"


async def test_huge_base64_refused_before_decoding(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings.model_copy(update={"max_image_bytes": 4096})
    decoded: list[int] = []
    real = base64.b64decode
    monkeypatch.setattr(images.base64, "b64decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    big = base64.b64encode(b"\x89PNG" + b"A" * 10_000).decode()
    for ref in (big, f"data:image/png;base64,{big}"):
        with pytest.raises(ImageError) as ei:
            await load_image(ref, s)
        assert ei.value.code == "image_too_large"
    assert decoded == []


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ("data:image/png;base64,@@@notbase64!!", "bad_base64"),
        ("data:text/html;base64,PGh0bWw+", "bad_data_uri"),
        ("data:image/png;base64", "bad_data_uri"),
        ("data:image/png;base64,", "empty_image"),
        ("iVBORw0KGgo" + "A" * 62, "bad_base64"),  # right magic, impossible length
        ("iVBORw0KGgo" + "A" * 61, "corrupt_image"),  # a PNG signature and nothing else
        ("   ", "empty_image"),
        ("ftp://example.com/a.png", "unsupported_scheme"),
        ("gopher://127.0.0.1/", "unsupported_scheme"),
    ],
)
async def test_bad_refs_refused(settings: Settings, ref: str, code: str) -> None:
    with pytest.raises(ImageError) as ei:
        await load_image(ref, settings)
    assert ei.value.code == code


async def test_base64_of_non_image(settings: Settings) -> None:
    with pytest.raises(ImageError) as ei:
        await load_image(base64.b64encode(b"just some words, definitely not pixels " * 3).decode(), settings)
    assert ei.value.code == "not_an_image"


# --- refusals: paths ----------------------------------------------------------------------------


async def test_path_outside_allowed_dirs(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    allowed = settings.allowed_dirs[0]
    for ref in (str(outside), f"{allowed}/../secret.png", "/etc/passwd", "/etc/does-not-exist.png"):
        with pytest.raises(AccessDenied) as ei:
            await load_image(ref, settings)
        assert ei.value.code == "path_not_allowed"
    # a sibling folder whose name merely starts with the allowed one is still outside
    sib = tmp_path / "allowed-evil"
    sib.mkdir()
    (sib / "x.png").write_bytes(png_bytes())
    with pytest.raises(AccessDenied):
        await load_image(str(sib / "x.png"), settings)


async def test_symlink_escape_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    allowed = settings.allowed_dirs[0]
    (allowed / "link.png").symlink_to(outside)
    (allowed / "dirlink").symlink_to(tmp_path)
    for ref in (allowed / "link.png", allowed / "dirlink" / "secret.png"):
        with pytest.raises(AccessDenied):
            await load_image(str(ref), settings)
    # a symlink that stays inside is fine
    (allowed / "real.png").write_bytes(png_bytes())
    (allowed / "inside.png").symlink_to(allowed / "real.png")
    assert (await load_image(str(allowed / "inside.png"), settings)).width == 32


async def test_directory_missing_and_fifo(settings: Settings) -> None:
    import os

    allowed = settings.allowed_dirs[0]
    (allowed / "sub").mkdir()
    with pytest.raises(ImageError) as ei:
        await load_image(str(allowed / "sub"), settings)
    assert ei.value.code == "not_a_file"
    with pytest.raises(ImageError) as ei:
        await load_image(str(allowed / "nope.png"), settings)
    assert ei.value.code == "file_not_found"
    os.mkfifo(allowed / "pipe.png")
    with pytest.raises(ImageError) as ei:  # must not block waiting for a writer
        await load_image(str(allowed / "pipe.png"), settings)
    assert ei.value.code == "not_a_file"
    (allowed / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as ei:
        await load_image(str(allowed / "empty.png"), settings)
    assert ei.value.code == "empty_image"


async def test_big_file_refused_by_size(settings: Settings) -> None:
    s = settings.model_copy(update={"max_image_bytes": 2048})
    p = settings.allowed_dirs[0] / "big.png"
    p.write_bytes(b"\0" * 10_000)
    with pytest.raises(ImageError) as ei:
        await load_image(str(p), s)
    assert ei.value.code == "image_too_large"


# --- refusals: URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1",
        "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "ff02::1",
    ],
)  # fmt: skip
def test_non_public_addresses(addr: str) -> None:
    assert not is_public_address(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(addr: str) -> None:
    assert is_public_address(ipaddress.ip_address(addr))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://10.0.0.8/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://localhost/x.png",  # a hostname that resolves to loopback
        "http://2130706433/x.png",  # 127.0.0.1 as one integer
        "http://0x7f.1/x.png",
    ],
)
async def test_private_urls_refused(settings: Settings, url: str) -> None:
    with pytest.raises(AccessDenied) as ei:
        await load_image(url, settings)
    assert ei.value.code == "url_not_allowed" and "MUGPOS_ALLOW_PRIVATE_URLS" in ei.value.hint


async def test_url_success_when_private_allowed(settings: Settings, http_server: tuple) -> None:
    base, routes = http_server
    raw = png_bytes()
    routes["/ok.png"] = (200, {"Content-Type": "image/png"}, raw, 0)
    routes["/hop1"] = (302, {"Location": "/ok.png"}, b"", 0)
    s = settings.model_copy(update={"allow_private_urls": True})
    li = await load_image(f"{base}/ok.png", s)
    assert li.source == "url" and li.data == raw and li.format == "png"
    assert (await load_image(f"{base}/hop1", s)).data == raw
    # same server by name: Host header keeps the name while the connection is pinned to the IP
    port = base.rsplit(":", 1)[1]
    assert (await load_image(f"http://localhost:{port}/ok.png", s)).data == raw


async def test_redirect_to_private_refused(
    settings: Settings, http_server: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 'public' host (the test server, treated as public) that redirects to private addresses."""
    base, routes = http_server
    port = int(base.rsplit(":", 1)[1])
    real_check = images.is_public_address
    monkeypatch.setattr(images, "is_public_address", lambda ip: str(ip) == "127.0.0.1" or real_check(ip))

    async def fake_dns(host: str, p: int) -> list:
        return [ipaddress.ip_address("127.0.0.1" if host == "public.example" else host)]

    monkeypatch.setattr(images, "resolve_host", fake_dns)
    routes["/ok2.png"] = (200, {"Content-Type": "image/png"}, png_bytes(), 0)
    assert (await load_image(f"http://public.example:{port}/ok2.png", settings)).width == 32
    for target in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:1/"):
        routes["/evil"] = (302, {"Location": target}, b"", 0)
        with pytest.raises(AccessDenied) as ei:
            await load_image(f"http://public.example:{port}/evil", settings)
        assert ei.value.code == "url_not_allowed"


async def test_url_refusals(settings: Settings, http_server: tuple) -> None:
    base, routes = http_server
    s = settings.model_copy(
        update={"allow_private_urls": True, "url_timeout_s": 0.5, "max_image_bytes": 4096}
    )
    routes["/page"] = (200, {"Content-Type": "text/html"}, b"<html></html>", 0)
    routes["/slow.png"] = (200, {"Content-Type": "image/png"}, png_bytes(), 3.0)
    routes["/loop"] = (302, {"Location": "/loop"}, b"", 0)
    routes["/big.png"] = (200, {"Content-Type": "image/png"}, b"\0" * 10_000, 0)
    routes["/missing.png"] = (404, {"Content-Type": "image/png"}, b"", 0)
    routes["/empty.png"] = (200, {"Content-Type": "image/png"}, b"", 0)
    expected = {
        "/page": "not_an_image",
        "/slow.png": "url_timeout",
        "/loop": "too_many_redirects",
        "/big.png": "image_too_large",
        "/missing.png": "url_http_error",
        "/empty.png": "empty_image",
    }
    for path, code in expected.items():
        with pytest.raises(ImageError) as ei:
            await load_image(base + path, s)
        assert ei.value.code == code, path


# --- fuzzing: anything in, a clean answer or a clean ImageError out ------------------------------


_FUZZ_SETTINGS = Settings(
    _env_file=None, allowed_dirs=[Path("/nonexistent-mugpos-fuzz")], max_image_bytes=64 * 1024
)


def _png_prefix_mutations() -> st.SearchStrategy[bytes]:
    base = png_bytes(size=(8, 8))
    return st.builds(
        lambda cut, flips: bytes(b ^ m for b, m in zip(base[:cut], flips + bytes(len(base)), strict=False)),
        st.integers(0, len(base)),
        st.binary(max_size=len(base)),
    )


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), _png_prefix_mutations()))
def test_fuzz_decode_never_crashes(data: bytes) -> None:
    try:
        im, fmt = decode_image_bytes(data, _FUZZ_SETTINGS)
    except ImageError as e:
        assert e.code and e.message and e.hint
    else:
        assert im.mode == "RGB" and im.width > 0 and fmt


@hsettings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_refs_never_crash(ref: str) -> None:
    import asyncio

    try:
        asyncio.run(load_image(ref, _FUZZ_SETTINGS))
    except ImageError as e:
        assert e.code and e.message
    else:  # a random string that decodes to a real image is astronomically unlikely but allowed
        pass


def test_ultralytics_open_patch_is_bypassed(settings: Settings) -> None:
    """Ultralytics swaps PIL's Image.open for one that pip-installs a plugin on unknown bytes."""
    import ultralytics.utils.patches  # noqa: F401  (installs the patch)

    with pytest.raises(ImageError) as ei:
        decode_image_bytes(b"definitely not an image, but long enough to look at", settings)
    assert ei.value.code == "not_an_image"
