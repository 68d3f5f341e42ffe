"""Small helpers the security tests import (the fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from testkit import ServedProcess, mugpos_serve

SECRET_TOKEN = "tok-SECRET-7f3a9c2e51d84b06"
SECRET_S3 = "s3-SECRET-AKIAFAKE-9d8c7b6a5f4e3d2c"
SECRET_MONGO_PASSWORD = "mongo-SECRET-pw-4411"


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(side: int = 40_000) -> bytes:
    """A real, valid 1-bit PNG of side x side pixels (1.6 G pixels): ~200 KB that inflate to 200 MB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(comp.compress(row * (side % 1000)))
    parts.append(comp.flush())
    idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- a real `mugpos serve --transport streamable-http` in a subprocess ------------------------------


HttpServer = ServedProcess  # the name the security tests use


def server_env(tmp_path: Path, test_data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(
        {
            "MUGPOS_DETECTOR_WEIGHTS": str(test_data / "models" / "yolov8n_int8.onnx"),
            "MUGPOS_EMBEDDER": "none",
            "MUGPOS_DATA_DIR": str(tmp_path / "srvdata"),
            "MUGPOS_ALLOWED_DIRS": str(test_data / "photos"),
            "MUGPOS_THREADS": "1",
            "MUGPOS_WARMUP": "false",
            "YOLO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def run_http_server(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[HttpServer]:
    with mugpos_serve(tmp_path, env, *args, timeout_s=60) as server:
        yield server
