"""Every way an image reaches mugpos, and every limit that keeps a hostile one out.

An image reference is a local path (only inside the allowed folders), an http(s) URL (only to public
addresses, checked after DNS and on every redirect, with the connection pinned to the checked IP), a
data URI, raw base64, or a `mugpos://` resource URI (resolved by the caller's resolver). Size and
pixel limits are enforced before any full decode, so a decompression bomb never reaches memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import io
import ipaddress
import os
import re
import socket
import stat
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote_to_bytes

from mugpos.engine.pixels import to_rgb
from mugpos.errors import AccessDenied, ImageError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

    from mugpos.settings import Settings

Source = Literal["path", "url", "data-uri", "base64", "resource"]
Resolver = Callable[[str], Awaitable[bytes]]

_INPUT_HINT = "Pass an image file path, an http(s) URL, a data URI, base64 bytes or a mugpos:// URI."
_B64_CHARS = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")
# Leading base64 of common image signatures: PNG, JPEG, GIF, WebP/RIFF, BMP, TIFF (LE, BE).
_B64_MAGIC = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "Qk", "SUkq", "TU0A")
_IMAGE_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF", b"BM", b"II*\x00", b"MM\x00*",
)  # fmt: skip
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class LoadedImage:
    """A decoded RGB image with the exact bytes it came from (for hashing, caching and storage)."""

    image: Image.Image = field(repr=False)
    data: bytes = field(repr=False)
    sha256: str
    source: Source
    format: str
    width: int
    height: int
    read_ms: float = 0.0  # getting the bytes (file, URL, base64 text)
    decode_ms: float = 0.0  # bytes -> RGB pixels, and their hash


# --- decoding ---------------------------------------------------------------------------------


def decode_image_bytes(data: bytes, settings: Settings) -> tuple[Image.Image, str]:
    """Bytes -> (RGB image, lower-case format). Sync and CPU-bound: call it from a worker thread.

    Size, pixel count and side length are checked from the header before the pixels are decoded.
    """
    from PIL import Image, ImageFile, UnidentifiedImageError

    if not data:
        raise ImageError("The image is empty (0 bytes).", hint=_INPUT_HINT, code="empty_image")
    _check_byte_size(len(data), settings)
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # PIL's own guard: a warning above this (made an error, once, process-wide), an error above
    # twice this. Our header check below is the authoritative one.
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    _bomb_warnings_are_errors()
    try:
        im = _pil_open()(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_many_pixels(str(e), settings) from None
    except UnidentifiedImageError as e:
        if data.startswith(_IMAGE_SIGNATURES):
            raise _corrupt(e) from None
        raise ImageError(
            "The data is not an image format mugpos can read.",
            hint="Send a JPEG, PNG, WebP, GIF, BMP or TIFF image.",
            code="not_an_image",
        ) from None
    except Exception as e:  # PIL raises many types for a broken header
        raise _corrupt(e) from None
    fmt = (im.format or "unknown").lower()
    w, h = im.size
    if w <= 0 or h <= 0:
        raise _corrupt(ValueError(f"size {w}x{h}"))
    if w * h > settings.max_image_pixels or max(w, h) > settings.max_image_side:
        raise _too_many_pixels(f"{w}x{h}", settings)
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _too_many_pixels(str(e), settings) from None
    except Exception as e:
        raise _corrupt(e) from None
    try:
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im) or im
    except Exception:  # a broken EXIF block must not cost the picture; keep it unrotated
        pass
    return to_rgb(im), fmt


def _pil_open() -> Callable[..., Image.Image]:
    """PIL's own `Image.open`. Ultralytics replaces it with one that, on an unknown format, tries
    to pip-install a HEIF plugin: never acceptable on the request path for untrusted bytes.

    Private name on purpose: Ultralytics has no public switch to leave `PIL.Image.open` alone
    (`ultralytics.utils.patches` replaces it at import and keeps PIL's own as `_image_open`). If
    that name goes away, `getattr` falls back to the patched opener rather than failing.
    """
    import sys

    from PIL import Image

    opener = Image.open
    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is not None and getattr(opener, "__module__", "") == patches.__name__:
        opener = getattr(patches, "_image_open", opener)
    return opener


@functools.cache
def _bomb_warnings_are_errors() -> None:
    """`warnings.catch_warnings` is not thread-safe; a single global filter is."""
    from PIL import Image

    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _check_byte_size(n: int, settings: Settings) -> None:
    if n > settings.max_image_bytes:
        raise ImageError(
            f"The image is {n / 1e6:.1f} MB, over the {settings.max_image_bytes / 1e6:.1f} MB limit.",
            hint="Send a smaller or more compressed image, or raise MUGPOS_MAX_IMAGE_BYTES.",
            code="image_too_large",
        )


def _too_many_pixels(detail: str, settings: Settings) -> ImageError:
    return ImageError(
        f"The image is too large in pixels ({detail}); the limits are {settings.max_image_pixels:,} "
        f"pixels and {settings.max_image_side:,} px a side.",
        hint="Downscale the image, or raise MUGPOS_MAX_IMAGE_PIXELS / MUGPOS_MAX_IMAGE_SIDE.",
        code="image_too_large",
    )


def _corrupt(e: BaseException) -> ImageError:
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return ImageError(
        f"The image is corrupt or truncated ({reason}).",
        hint="Re-export or re-download the image and try again.",
        code="corrupt_image",
    )


# --- loading ----------------------------------------------------------------------------------


async def load_image(
    ref: str, settings: Settings, *, resolver: Resolver | None = None, any_path: bool = False
) -> LoadedImage:
    """Fetch and decode `ref` (path, URL, data URI, base64 or mugpos:// URI) within every limit.

    `any_path`: the caller named the file themselves (the CLI), so the allowed-folders sandbox, which
    guards the doors where someone else names the path, does not apply; every other limit does."""
    t0 = time.perf_counter()
    data, source = await read_image_bytes(ref, settings, resolver=resolver, any_path=any_path)
    t1 = time.perf_counter()
    image, fmt, sha256 = await asyncio.to_thread(_decode_and_hash, data, settings)
    return LoadedImage(
        image=image,
        data=data,
        sha256=sha256,
        source=source,
        format=fmt,
        width=image.width,
        height=image.height,
        read_ms=round((t1 - t0) * 1000, 2),
        decode_ms=round((time.perf_counter() - t1) * 1000, 2),
    )


def _decode_and_hash(data: bytes, settings: Settings) -> tuple[Image.Image, str, str]:
    """One worker-thread hop for all the CPU work on the bytes: the event loop stays free."""
    image, fmt = decode_image_bytes(data, settings)
    return image, fmt, hashlib.sha256(data).hexdigest()


async def read_image_bytes(
    ref: str, settings: Settings, *, resolver: Resolver | None = None, any_path: bool = False
) -> tuple[bytes, Source]:
    """The raw bytes behind `ref` and what kind of reference it was; no decoding."""
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError("No image was given.", hint=_INPUT_HINT, code="empty_image")
    ref = ref.strip()
    lower = ref[:16].lower()
    if lower.startswith("mugpos://"):
        if resolver is None:
            raise ImageError(
                f"Cannot resolve the resource URI {ref[:200]!r} here.",
                hint="mugpos:// URIs work through the MCP server; pass a path, URL or base64 instead.",
                code="unresolvable_resource",
            )
        data = await resolver(ref)
        if not data:
            raise ImageError("The resource holds no image bytes.", hint=_INPUT_HINT, code="empty_image")
        _check_byte_size(len(data), settings)
        return data, "resource"
    if lower.startswith("data:"):
        return await _off_loop(_decode_data_uri, ref, settings), "data-uri"
    if lower.startswith(("http://", "https://")):
        return await fetch_url(ref, settings), "url"
    if lower.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return await _read_path(unquote(urlsplit(ref).path), settings, any_path), "path"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", ref):
        raise ImageError(
            f"Unsupported URL scheme in {ref.split('://', 1)[0]!r}://.",
            hint="Only http:// and https:// URLs (and mugpos:// resources) are fetched.",
            code="unsupported_scheme",
        )
    if _looks_like_base64(ref):
        return await _off_loop(_decode_base64, ref, settings), "base64"
    return await _read_path(ref, settings, any_path), "path"


async def _off_loop(decode: Callable[[str, Settings], bytes], text: str, settings: Settings) -> bytes:
    """Base64 of a photo is a megabyte of text: decode it in a worker thread unless it is small."""
    if len(text) < 64 * 1024:
        return decode(text, settings)
    return await asyncio.to_thread(decode, text, settings)


def _looks_like_base64(ref: str) -> bool:
    """Decided from the text alone (no existence probe that could leak what is on disk).

    Base64 never holds '.', '~' or '\\'; an image's base64 starts with its format's signature;
    a path starts with '/', './' or '~', or is short.
    """
    if len(ref) > 4096:
        return True
    if not _B64_CHARS.match(ref):
        return False
    if ref.startswith(_B64_MAGIC):
        return True
    return len(ref) >= 64 and not ref.startswith(("/", "./", "../", "~"))


def _max_b64_len(settings: Settings) -> int:
    return (settings.max_image_bytes + 2) // 3 * 4


def _decode_base64(text: str, settings: Settings) -> bytes:
    # Checked on the encoded length, before any decoding allocates the payload.
    compact_len = len(text) - sum(text.count(c) for c in " \t\r\n")
    if compact_len > _max_b64_len(settings) + 4:
        _check_byte_size(compact_len * 3 // 4, settings)
    compact = re.sub(r"\s+", "", text)
    try:
        if "-" in compact or "_" in compact:
            data = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        else:
            data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(
            "The image text is not valid base64.",
            hint="Send the file's bytes base64-encoded (standard alphabet), or a data URI.",
            code="bad_base64",
        ) from None
    if not data:
        raise ImageError("The base64 image decodes to 0 bytes.", hint=_INPUT_HINT, code="empty_image")
    _check_byte_size(len(data), settings)
    return data


def _decode_data_uri(uri: str, settings: Settings) -> bytes:
    head, sep, payload = uri.partition(",")
    if not sep:
        raise ImageError(
            "The data URI has no ',' before its data.",
            hint="Use the form data:image/png;base64,<base64 bytes>.",
            code="bad_data_uri",
        )
    params = [p.strip().lower() for p in head[5:].split(";")]
    mediatype, is_b64 = params[0], "base64" in params[1:]
    if mediatype and not mediatype.startswith("image/"):
        raise ImageError(
            f"The data URI holds {mediatype!r}, not an image.",
            hint="Use a data URI with an image/* media type, e.g. data:image/png;base64,...",
            code="bad_data_uri",
        )
    if is_b64:
        return _decode_base64(payload, settings)
    if len(payload) > 3 * settings.max_image_bytes:
        _check_byte_size(len(payload) // 3, settings)
    data = unquote_to_bytes(payload)
    if not data:
        raise ImageError("The data URI holds no bytes.", hint=_INPUT_HINT, code="empty_image")
    _check_byte_size(len(data), settings)
    return data


# --- paths ------------------------------------------------------------------------------------


def resolve_path(ref: str) -> Path:
    """The real path behind `ref` (symlinks and '..' resolved)."""
    try:
        path = Path(ref).expanduser()
        return (path if path.is_absolute() else Path.cwd() / path).resolve(strict=False)
    except (OSError, RuntimeError, ValueError) as e:
        raise ImageError(f"Not a usable path: {e}.", hint=_INPUT_HINT, code="bad_path") from None


def resolve_allowed_path(ref: str, settings: Settings) -> Path:
    """The real path behind `ref` (symlinks and '..' resolved) if it lies in an allowed folder."""
    real = resolve_path(ref)
    allowed = settings.effective_allowed_dirs()
    if not any(real == d or real.is_relative_to(d) for d in allowed):
        raise AccessDenied(
            "That path is outside the folders mugpos may read images from.",
            hint="Move the image into an allowed folder or add its folder to MUGPOS_ALLOWED_DIRS "
            f"(allowed now: {', '.join(str(d) for d in allowed)}).",
            code="path_not_allowed",
        )
    return real


async def _read_path(ref: str, settings: Settings, any_path: bool = False) -> bytes:
    real = resolve_path(ref) if any_path else resolve_allowed_path(ref, settings)
    return await asyncio.to_thread(_read_file, real, ref, settings)


def _read_file(real: Path, shown: str, settings: Settings) -> bytes:
    name = shown if len(shown) <= 200 else shown[:200] + "..."
    # O_NOFOLLOW: the checked path must not be swapped for a symlink; O_NONBLOCK: a FIFO won't hang.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise ImageError(f"No such image file: {name}", hint=_INPUT_HINT, code="file_not_found") from None
    except IsADirectoryError:
        raise _not_a_file(name) from None
    except OSError as e:
        if real.is_symlink():
            raise AccessDenied(
                "The path changed to a symlink while it was being opened.",
                hint="Pass the real file path.",
                code="path_not_allowed",
            ) from None
        raise ImageError(
            f"Cannot read {name}: {e.strerror}.", hint=_INPUT_HINT, code="unreadable_file"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_file(name)
        _check_byte_size(st.st_size, settings)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(settings.max_image_bytes + 1)
    finally:
        os.close(fd)
    if not data:
        raise ImageError(f"The image file is empty: {name}", hint=_INPUT_HINT, code="empty_image")
    _check_byte_size(len(data), settings)
    return data


def _not_a_file(name: str) -> ImageError:
    return ImageError(
        f"{name} is not a regular file (a folder or a device).",
        hint="Pass the path of one image file.",
        code="not_a_file",
    )


# --- URLs -------------------------------------------------------------------------------------


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for globally routable unicast addresses; never loopback, private, metadata, etc."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d reaches a.b.c.d
            return is_public_address(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in ipaddress.ip_network("::/96"):  # IPv4-compatible (deprecated)
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    if ip in _METADATA_IPS:
        return False
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or not ip.is_global
    )


async def resolve_host(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ImageError(
            f"Cannot resolve the host {host!r} ({e}).",
            hint="Check the URL's host name and the network.",
            code="url_unreachable",
        ) from None
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


async def _checked_address(url: httpx.URL, settings: Settings) -> str:
    """Resolve the URL's host and refuse it unless every address is public; the IP to connect to."""
    if url.scheme not in ("http", "https") or not url.host:
        raise ImageError(
            f"Only http(s) URLs with a host can be fetched, not {str(url)[:200]!r}.",
            hint="Use an http:// or https:// URL.",
            code="unsupported_scheme",
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    ips = await resolve_host(url.host, port)
    if not ips:
        raise ImageError(
            f"The host {url.host!r} has no address.", hint="Check the URL.", code="url_unreachable"
        )
    if not settings.allow_private_urls:
        bad = [ip for ip in ips if not is_public_address(ip)]
        if bad:
            raise AccessDenied(
                f"The URL's host {url.host!r} resolves to a non-public address ({bad[0]}); "
                "mugpos only fetches images from public internet addresses.",
                hint="Use a public URL, send the image as base64, or (on a trusted network only) "
                "set MUGPOS_ALLOW_PRIVATE_URLS=true.",
                code="url_not_allowed",
            )
    return str(ips[0])


async def fetch_url(url: str, settings: Settings) -> bytes:
    """GET an image with a total deadline, a byte limit, manual redirects and per-hop address checks."""
    try:
        async with asyncio.timeout(settings.url_timeout_s):
            return await _fetch(url, settings)
    except TimeoutError:
        raise ImageError(
            f"Fetching the image took longer than {settings.url_timeout_s:g} s.",
            hint="Try again, use a faster host, send the image as base64, or raise MUGPOS_URL_TIMEOUT_S.",
            code="url_timeout",
        ) from None


async def _fetch(url_text: str, settings: Settings) -> bytes:
    import httpx

    try:
        url = httpx.URL(url_text)
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise ImageError(f"Not a valid URL: {e}.", hint="Check the URL.", code="bad_url") from None
    timeout = httpx.Timeout(settings.url_timeout_s)
    # trust_env=False: no proxy may reroute the request around the address check.
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for hop in range(settings.url_max_redirects + 1):
            ip = await _checked_address(url, settings)
            # Connect to the IP we checked (no second DNS lookup to rebind), keep Host and SNI.
            pinned = url.copy_with(host=ip)
            default_port = 443 if url.scheme == "https" else 80
            host_header = url.host if (url.port or default_port) == default_port else f"{url.host}:{url.port}"
            if ":" in url.host and not host_header.startswith("["):
                host_header = f"[{url.host}]" + (f":{url.port}" if url.port else "")
            request = client.build_request(
                "GET",
                pinned,
                headers={
                    "Host": host_header,
                    "Accept": "image/*",
                    "Accept-Encoding": "identity",
                    "User-Agent": "mugpos",
                },
                extensions={"sni_hostname": url.host, "timeout": timeout.as_dict()},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError as e:
                raise ImageError(
                    f"Could not fetch the image from {url.host}: {type(e).__name__}: {e}".rstrip(": "),
                    hint="Check the URL and that the host is reachable.",
                    code="url_unreachable",
                ) from None
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise ImageError(
                            "A redirect without a Location.", hint="Check the URL.", code="bad_url"
                        )
                    if hop == settings.url_max_redirects:
                        break
                    try:
                        url = url.join(location)
                    except (httpx.InvalidURL, ValueError) as e:
                        raise ImageError(
                            f"Bad redirect target: {e}.", hint="Check the URL.", code="bad_url"
                        ) from None
                    continue
                return await _read_body(response, url, settings)
            finally:
                await response.aclose()
    raise ImageError(
        f"The URL redirected more than {settings.url_max_redirects} times.",
        hint="Use the final address of the image, or raise MUGPOS_URL_MAX_REDIRECTS.",
        code="too_many_redirects",
    )


async def _read_body(response: httpx.Response, url: httpx.URL, settings: Settings) -> bytes:
    import httpx

    if response.status_code != 200:
        raise ImageError(
            f"The server answered HTTP {response.status_code} for the image at {url.host}.",
            hint="Check that the URL points at an image that exists and is public.",
            code="url_http_error",
        )
    ctype = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not ctype.startswith("image/"):
        raise ImageError(
            f"The URL returned {ctype or 'no content type'!s}, not an image.",
            hint="Link the image file itself (its content type must be image/*), not a web page.",
            code="not_an_image",
        )
    length = response.headers.get("content-length")
    if length and length.isdigit():
        _check_byte_size(int(length), settings)
    buf = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buf += chunk
            if len(buf) > settings.max_image_bytes:
                _check_byte_size(len(buf), settings)
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as e:
        raise ImageError(
            f"The download broke off: {type(e).__name__}.", hint="Try again.", code="url_unreachable"
        ) from None
    if not buf:
        raise ImageError("The URL returned an empty body.", hint=_INPUT_HINT, code="empty_image")
    return bytes(buf)
