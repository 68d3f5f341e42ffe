"""Settings that name a secret instead of holding it: `gsm://projects/P/secrets/S[/versions/V]`.

Resolved through Google Secret Manager when the settings load (the version defaults to "latest"),
cached per reference for `MUGPOS_SECRET_TTL_S` seconds (default 300), and never echoed: errors name
the secret and the setting, not the value. `MUGPOS_GSM_ENDPOINT=host:port` points the client at an
emulator over an insecure channel with anonymous credentials (tests, local development).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mugpos.errors import ConfigError

_REF = re.compile(
    r"gsm://projects/(?P<project>[A-Za-z0-9._:-]+)/secrets/(?P<secret>[A-Za-z0-9_-]+)"
    r"(?:/versions/(?P<version>[A-Za-z0-9_-]+))?/?"
)
DEFAULT_TTL_S = 300.0
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SecretRef:
    project: str
    secret: str
    version: str = "latest"

    @property
    def name(self) -> str:
        """The resource name Secret Manager expects."""
        return f"projects/{self.project}/secrets/{self.secret}/versions/{self.version}"


def parse_ref(ref: str, *, setting: str | None = None) -> SecretRef:
    m = _REF.fullmatch(ref.strip())
    if m is None:
        raise ConfigError(
            f"{_where(setting)}is not a valid secret reference",
            hint="write gsm://projects/PROJECT/secrets/NAME or gsm://projects/PROJECT/secrets/NAME/versions/N",
        )
    return SecretRef(m["project"], m["secret"], m["version"] or "latest")


def _where(setting: str | None) -> str:
    return f"{setting} " if setting else ""


ClientFactory = Callable[[], Any]
_cache: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()
_client: Any = None
_client_factory: ClientFactory | None = None


def default_client() -> Any:
    """Secret Manager client: Application Default Credentials, or an emulator at MUGPOS_GSM_ENDPOINT."""
    try:
        from google.cloud import secretmanager
    except ImportError as exc:
        raise ConfigError(
            "gsm:// secret references need the google-cloud-secret-manager package",
            hint="pip install google-cloud-secret-manager, or set the value directly in the environment",
        ) from exc
    endpoint = os.environ.get("MUGPOS_GSM_ENDPOINT")
    if endpoint:
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc import (
            SecretManagerServiceGrpcTransport,
        )

        transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
        return secretmanager.SecretManagerServiceClient(transport=transport)
    return secretmanager.SecretManagerServiceClient()


def set_client_factory(factory: ClientFactory | None) -> None:
    """Use another client (tests, a custom credential); also clears the cache."""
    global _client, _client_factory
    with _lock:
        _client_factory = factory
        _client = None
        _cache.clear()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _explain(exc: BaseException) -> tuple[str, str]:
    """(what went wrong, what to do) for a Secret Manager failure, without any secret value."""
    kind = type(exc).__name__
    table = {
        "NotFound": ("was not found", "check the project, secret name and version"),
        "PermissionDenied": (
            "is not readable with these credentials (permission denied)",
            "grant roles/secretmanager.secretAccessor to the service account",
        ),
        "Unauthenticated": (
            "could not be read: the credentials were rejected",
            "check GOOGLE_APPLICATION_CREDENTIALS or the workload identity",
        ),
        "DefaultCredentialsError": (
            "could not be read: no Google credentials found",
            "set GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`",
        ),
        "FailedPrecondition": ("is disabled or destroyed", "enable the secret version or point at another"),
        "InvalidArgument": ("was rejected as invalid", "check the reference"),
    }
    if kind in table:
        return table[kind]
    if kind in {"DeadlineExceeded", "ServiceUnavailable", "RetryError"}:
        return ("could not be read: Secret Manager did not answer in time", "check the network and retry")
    return (f"could not be read ({kind})", "check the reference and the credentials")


def resolve_secret(ref: str, *, setting: str | None = None) -> str:
    """The secret's text. Cached per reference; a `ConfigError` naming the secret on any failure."""
    global _client
    parsed = parse_ref(ref, setting=setting)
    ttl = float(os.environ.get("MUGPOS_SECRET_TTL_S", DEFAULT_TTL_S))
    now = time.monotonic()
    with _lock:
        hit = _cache.get(parsed.name)
        if hit is not None and hit[1] > now:
            return hit[0]
    what = f"secret {parsed.name}" + (f" (for {setting})" if setting else "")
    try:
        with _lock:
            if _client is None:
                _client = (_client_factory or default_client)()
            client = _client
        timeout = float(os.environ.get("MUGPOS_GSM_TIMEOUT_S", DEFAULT_TIMEOUT_S))
        response = client.access_secret_version(name=parsed.name, timeout=timeout, retry=None)
        value = response.payload.data.decode("utf-8")
    except ConfigError:
        raise
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", hint="store the value as text") from None
    except Exception as exc:
        problem, hint = _explain(exc)
        raise ConfigError(f"{what} {problem}", hint=hint, secret=parsed.name, setting=setting) from None
    with _lock:
        _cache[parsed.name] = (value, now + ttl)
    return value
