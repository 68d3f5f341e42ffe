"""Can model weights be downloaded right now? One fast answer, asked once per process.

Offline, Hugging Face's client retries each request for ~50 s before it gives up, and Ultralytics
checks the network again on every load. So before any download is attempted, this asks once: has
the user said offline (`MUGPOS_OFFLINE`, or the libraries' own `HF_HUB_OFFLINE` / `YOLO_OFFLINE`),
and if not, does a TCP connection to the weights' host open within a second and a half? The answer
is kept for the process; when it is no, the libraries are told to use their local caches only, so
a cached model still loads and a missing one fails at once with a line that names the setting.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mugpos.settings import Settings

OFFLINE_VARS = ("MUGPOS_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE")
PROBE_TIMEOUT_S = 1.5
log = logging.getLogger(__name__)


def offline_setting() -> str | None:
    """The environment variable that says this machine is offline, if one does."""
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return var
    return None


@lru_cache(maxsize=8)
def reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A bounded TCP probe (DNS has no timeout of its own, so it runs in a thread we stop waiting for)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, name=f"mugpos-probe-{host}", daemon=True)
    t.start()
    t.join(timeout + 0.25)
    if not ok:
        log.debug("%s:%d not reachable within %.1f s", host, port, timeout)
    return bool(ok)


def why_offline(host: str) -> str | None:
    """None when `host` can serve downloads; else why not, naming the setting (for messages)."""
    var = offline_setting()
    if var is not None:
        return f"{var} is set"
    if not reachable(host):
        return f"{host} cannot be reached (set MUGPOS_OFFLINE=1 to skip this check)"
    return None


def use_local_caches_only() -> None:
    """Tell Hugging Face and Ultralytics not to try the network (a cached model still loads)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["YOLO_OFFLINE"] = "1"
    try:  # huggingface_hub reads the variable at import; set the constant too if it is loaded
        import huggingface_hub.constants as hf_constants

        hf_constants.HF_HUB_OFFLINE = True
    except Exception:
        pass


def detector_weights_status(settings: Settings) -> tuple[bool, str]:
    """(usable, how) for MUGPOS_DETECTOR_WEIGHTS without loading them: on disk, downloadable, or why not."""
    from mugpos.engine.detector import Detector
    from mugpos.errors import MugposError

    try:
        spec, local = Detector(settings).resolve_weights()
    except MugposError as exc:
        return False, exc.message
    return True, f"on disk: {local}" if local is not None else f"{spec} downloads on first use"


def clip_weights_status(settings: Settings) -> tuple[bool, str]:
    """(usable, how) for the CLIP embedder without importing torch: off, a local file, in the
    Hugging Face cache, downloadable, or why not."""
    if settings.embedder != "clip":
        return False, "disabled: MUGPOS_EMBEDDER=none"
    tag = settings.clip_pretrained.strip()
    if tag.lower() in ("", "none", "random"):
        return True, "random weights (MUGPOS_CLIP_PRETRAINED=none)"
    if Path(tag).expanduser().is_file():
        return True, f"on disk: {tag}"
    if in_hf_cache(settings.clip_model, tag):
        return True, "in the Hugging Face cache"
    why = why_offline("huggingface.co")
    if why is not None:
        return False, (
            f"the CLIP weights {settings.clip_model}/{tag} are not on this machine and cannot be "
            f"downloaded: {why}; MUGPOS_EMBEDDER=none runs without them"
        )
    return True, f"{settings.clip_model}/{tag} downloads on first use"


def in_hf_cache(model: str, tag: str) -> bool:
    """Whether a cached Hugging Face repo's name holds both the model and the tag (open_clip names
    its repos like laion/CLIP-ViT-B-32-laion2B-s34B-b79K)."""

    def norm(s: str) -> str:
        return "".join(c for c in s.lower() if c.isalnum())

    root = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    )
    try:
        names = [norm(p.name) for p in root.iterdir() if p.name.startswith("models--")]
    except OSError:
        return False
    return any(norm(model) in n and norm(tag) in n for n in names)
