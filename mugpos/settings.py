"""Every knob in one place: `MUGPOS_*` environment variables (or a `.env` file).

Any string setting may instead hold a `gsm://projects/P/secrets/S[/versions/V]` reference; it is
resolved through Google Secret Manager when the settings are loaded (see `mugpos.secrets`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mugpos"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUGPOS_", env_file=".env", extra="ignore")

    # --- models -----------------------------------------------------------------------------
    detector_weights: str = Field(
        "yolov8n.pt",
        description="YOLO weights: a .pt, .onnx or TensorRT .engine path, a model name Ultralytics "
        "downloads (yolov8n.pt), or a .yaml architecture for a random-initialised model (tests).",
    )
    detector_backend: Literal["auto", "onnxruntime", "ultralytics"] = Field(
        "auto",
        description="auto: .onnx weights on ONNX Runtime directly (no torch import, same detections), "
        "everything else through Ultralytics",
    )
    detector_imgsz: int = Field(640, ge=32, le=4096)
    confidence: float = Field(0.25, ge=0.0, le=1.0, description="detector confidence threshold")
    iou: float = Field(0.5, ge=0.0, le=1.0, description="detector NMS IoU threshold")
    embedder: Literal["clip", "none"] = "clip"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = Field(
        "laion2b_s34b_b79k",
        description="open_clip pretrained tag, a local checkpoint path, or 'none' for random weights",
    )
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    half: Literal["auto", "on", "off"] = Field("auto", description="fp16 inference (auto: on CUDA)")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU (default: cores)")
    warmup: bool = Field(True, description="run one dummy batch after loading the models")
    cpu_processes: int | None = Field(
        None,
        ge=0,
        le=64,
        description="worker processes for the CPU stages (plane fit, rules, moves), off the server's "
        "interpreter lock; 0 runs them in threads (default: 1 with two or more cores, else 0)",
    )

    # --- batching -------------------------------------------------------------------------
    batching: bool = True
    batch_max_size: int = Field(16, ge=1, le=256)
    batch_max_wait_ms: float = Field(4.0, ge=0.0, le=1000.0)

    # --- input limits ---------------------------------------------------------------------
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1024, description="decompression-bomb limit")
    max_image_side: int = Field(12_000, ge=32)
    url_timeout_s: float = Field(10.0, gt=0)
    url_max_redirects: int = Field(3, ge=0, le=10)
    allowed_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders images may be read from by path (os.pathsep or comma separated); "
        "default: the current folder and the data directory's inbox",
    )
    allow_private_urls: bool = Field(
        False, description="allow image URLs to loopback/private addresses (trusted LANs and tests only)"
    )
    max_rule_chars: int = Field(500, ge=10)
    max_scene_objects: int = Field(500, ge=1)

    # --- storage --------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=_xdg_data_home)
    cache_l2_bytes: int = Field(512 * 1024 * 1024, ge=0)
    redis_url: str | None = None
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    redis_timeout_s: float = Field(0.25, gt=0)
    layout_store: Literal["embedded", "mongodb"] = "embedded"
    rule_store: Literal["embedded", "mongodb"] = "embedded"
    mongodb_uri: SecretStr | None = None
    mongodb_db: str = "mugpos"
    mongodb_timeout_s: float = Field(3.0, gt=0)
    mongodb_fallback: bool = Field(True, description="fall back to the embedded store if MongoDB is down")
    blob_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = Field(None, description="R2: https://<account>.r2.cloudflarestorage.com")
    s3_bucket: str = "mugpos"
    s3_region: str = "auto"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_fallback: bool = Field(
        False, description="use the local blob folder (degraded) if S3 is unreachable when the store opens"
    )
    store_originals: bool = False

    # --- rules ----------------------------------------------------------------------------
    rules_llm: str | None = Field(None, description="LangChain chat model 'provider:model' for rules")

    # --- output ---------------------------------------------------------------------------
    annotated_max_side: int = Field(1024, ge=64, le=8192)
    annotated_format: Literal["webp", "jpeg", "png"] = Field(
        "jpeg", description="annotated picture format: jpeg encodes ~15x faster than webp at similar size"
    )
    annotated_quality: int = Field(80, ge=10, le=100)

    # --- server ---------------------------------------------------------------------------
    auth_token: SecretStr | None = None
    rate_limit_per_min: int = Field(600, ge=0, description="per-client requests a minute on HTTP; 0 = off")
    max_request_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    public_url: str | None = Field(
        None,
        description="the URL clients reach this server at (scheme://host[:port], no path), e.g. "
        "https://<pod id>-8765.proxy.runpod.net; names the OAuth resource and an allowed Host",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="extra Host names the HTTP server answers to (comma separated; *.example.com for "
        "sub-domains; * turns the DNS-rebinding check off). IP addresses and localhost always pass",
    )
    oauth_issuer: str | None = Field(
        None, description="OAuth 2.1 authorization server whose JWT access tokens are accepted (https)"
    )
    oauth_audience: str | None = Field(
        None, description="expected token audience (default: the public MCP URL, the RFC 8707 resource)"
    )
    oauth_jwks_url: str | None = Field(None, description="signing keys URL (default: from issuer metadata)")
    oauth_jwks_ttl_s: float = Field(300.0, gt=0, description="how long the issuer's keys are cached")
    oauth_jwks_refresh_cooldown_s: float = Field(
        10.0, ge=0, description="least time between re-reads of the keys when a token names an unknown key"
    )
    oauth_leeway_s: float = Field(30.0, ge=0, le=600, description="clock skew allowed on exp/nbf/iat")
    oauth_accept_plain_jwt: bool = Field(
        False,
        description="also accept access tokens whose header says typ JWT (or none), as some Auth0 and "
        "Entra ID setups issue; issuer, audience, expiry and signature are checked all the same",
    )

    # --- deploy ---------------------------------------------------------------------------
    idle_shutdown_s: float = Field(
        600.0, ge=0, description="timed pod: stop after this much idleness; 0 = never"
    )
    idle_warn_s: float = Field(60.0, ge=0)
    runpod_api_key: SecretStr | None = None
    runpod_pod_id: str | None = Field(None, description="defaults to RunPod's own RUNPOD_POD_ID")
    worker_concurrency: int = Field(16, ge=1, le=256)

    # --- agents and workflows: A2A, webhooks, report cards ---------------------------------
    a2a_task_store: Literal["sqlite", "memory"] = Field(
        "sqlite", description="A2A tasks: SQLite under the data dir (survives restarts) or in memory"
    )
    a2a_max_photos: int = Field(50, ge=1, le=1000, description="photos one A2A message may carry")
    a2a_concurrency: int = Field(4, ge=1, le=64, description="photos of one batch analysed at once")
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="URLs events are POSTed to (comma separated)"
    )
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Mugpos-Signature")
    webhook_events: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["analysis.completed", "rule.violated", "suggestion.made"],
        description="event types to send (comma separated)",
    )
    webhook_outbox: Literal["sqlite", "redis"] = Field(
        "sqlite", description="durable outbox: SQLite under the data dir, or Redis at MUGPOS_REDIS_URL"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="per delivery attempt")
    webhook_max_attempts: int = Field(12, ge=1, le=100, description="then the delivery is parked as dead")
    webhook_backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles per attempt")
    webhook_backoff_max_s: float = Field(900.0, gt=0)
    templated_api_key: SecretStr | None = Field(
        None, description="Templated.io key: report cards via their API"
    )
    templated_template_id: str | None = None
    templated_base_url: str = "https://api.templated.io"

    @field_validator("allowed_hosts", "webhook_urls", "webhook_events", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("public_url", "oauth_issuer")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            return None
        if v is not None and not v.strip().lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.strip() if v else v

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, v: object) -> object:
        if isinstance(v, str):
            parts = [p for chunk in v.split(os.pathsep) for p in chunk.split(",")]
            return [Path(p.strip()).expanduser() for p in parts if p.strip()]
        return v

    @model_validator(mode="after")
    def _resolve_secret_refs(self) -> Settings:
        refs = {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), str | SecretStr)
            and _plain(value).startswith("gsm://")
        }
        if refs:
            from mugpos.secrets import resolve_secret

            for name, value in refs.items():
                resolved = resolve_secret(_plain(value), setting=f"MUGPOS_{name.upper()}")
                object.__setattr__(
                    self, name, SecretStr(resolved) if isinstance(value, SecretStr) else resolved
                )
        return self

    # --- derived --------------------------------------------------------------------------
    def effective_allowed_dirs(self) -> list[Path]:
        dirs = self.allowed_dirs or [Path.cwd(), self.data_dir / "inbox"]
        return [d.expanduser().resolve() for d in dirs]

    def resolved_device(self) -> str:
        """The torch device string; imports torch, so call it only on the model path."""
        if self.device != "auto":
            return self.device
        import torch

        if torch.cuda.is_available():
            return "cuda:0"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"


def _plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
