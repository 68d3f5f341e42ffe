"""A real authorization server for the auth tests: npm `oidc-provider` under Node 22, on loopback.

CI installs it with `npm_tool oidc-provider oidc-provider@9.13` (MUGPOS_NPM_OIDC_PROVIDER is the
prefix) and Node 22 (MUGPOS_NODE22 is its bin folder). Without them the tests skip and say why.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from testkit import (  # free_port re-exported: the auth and conformance tests import it from here
    ServedProcess,
    free_port,
    mugpos_serve,
    stop_process,
)

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "oidc_provider.mjs"
BOTH = "mugpos:read mugpos:write"
STATIC_TOKEN = "tok-STATIC-auth-tests-5c1e9a"
CLIENTS: list[dict[str, Any]] = [
    {"client_id": "full", "client_secret": "full-secret-0123456789", "grant_types": ["client_credentials"],
     "redirect_uris": [], "response_types": [], "scope": BOTH},
    {"client_id": "reader", "client_secret": "reader-secret-0123456789", "grant_types": ["client_credentials"],
     "redirect_uris": [], "response_types": [], "scope": "mugpos:read"},
    {"client_id": "short", "client_secret": "short-secret-0123456789", "grant_types": ["client_credentials"],
     "redirect_uris": [], "response_types": [], "scope": BOTH},
]  # fmt: skip
SECRETS = {c["client_id"]: c["client_secret"] for c in CLIENTS}


def node_binary() -> str | None:
    folder = os.environ.get("MUGPOS_NODE22")
    if folder and (Path(folder) / "node").exists():
        return str(Path(folder) / "node")
    found = shutil.which("node")
    if not found:
        return None
    out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.strip()
    return found if out.startswith("v") and int(out[1:].split(".")[0]) >= 22 else None


def oidc_module() -> Path | None:
    prefix = os.environ.get("MUGPOS_NPM_OIDC_PROVIDER")
    if not prefix:
        return None
    module = Path(prefix) / "node_modules" / "oidc-provider"
    return module if (module / "package.json").exists() else None


def missing_reason() -> str | None:
    if node_binary() is None:
        return "Node 22 not found (MUGPOS_NODE22 or node >= 22 on PATH); .ci/run installs it"
    if oidc_module() is None:
        return "oidc-provider not installed: set MUGPOS_NPM_OIDC_PROVIDER (.ci/run: npm_tool oidc-provider)"
    return None


def rsa_jwk(kid: str) -> dict[str, Any]:
    """A fresh private RSA signing key as a JWK (the provider publishes its public half)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


@dataclass
class OidcServer:
    issuer: str
    port: int
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def hits(self, path: str, settle_s: float = 0.3) -> int:
        """Requests the provider logged for `path`, once its log has been still for `settle_s`: a
        thread reads the log, so a request answered a moment ago may not be counted yet."""

        def count() -> int:
            return sum(1 for line in list(self.lines) if line.startswith("REQ ") and line.split()[2] == path)

        last, since, deadline = count(), time.monotonic(), time.monotonic() + 5.0
        while time.monotonic() - since < settle_s and time.monotonic() < deadline:
            time.sleep(0.02)
            n = count()
            if n != last:
                last, since = n, time.monotonic()
        return last

    def token(self, client_id: str, resource: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            data["scope"] = scope
        r = httpx.post(f"{self.issuer}/token", data=data, auth=(client_id, SECRETS[client_id]), timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"].lower() == "bearer"
        return str(body["access_token"])

    def metadata(self) -> dict[str, Any]:
        return httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=30).json()


@contextlib.contextmanager
def oidc_server(
    tmp: Path, keys: list[dict[str, Any]], *, port: int | None = None, issuer: str | None = None,
    clients: list[dict[str, Any]] | None = None,
) -> Iterator[OidcServer]:  # fmt: skip
    node, module = node_binary(), oidc_module()
    assert node and module, missing_reason()
    port = port or free_port()
    keys_file = tmp / f"jwks-{port}-{keys[0]['kid']}.json"
    keys_file.write_text(json.dumps({"keys": keys}))
    env = {**os.environ, "OIDC_MODULE": str(module), "OIDC_PORT": str(port), "OIDC_KEYS": str(keys_file),
           "OIDC_CLIENTS": json.dumps(CLIENTS if clients is None else clients), "NODE_ENV": "test"}  # fmt: skip
    if issuer:
        env["OIDC_ISSUER"] = issuer
    proc = subprocess.Popen(
        [node, str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    server = OidcServer(issuer or f"http://127.0.0.1:{port}", port, proc)
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.lines.append(line.rstrip("\n"))
            if line.startswith("READY "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not ready.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("oidc-provider did not start:\n" + "\n".join(server.lines))
        yield server
    finally:
        stop_process(proc, timeout_s=10)


def tamper(token: str, **claims: Any) -> str:
    """The same signature over a changed payload (what an attacker who edits a token sends)."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    changed = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class MemoryTokens:
    """The SDK's TokenStorage, in memory (what a client keeps between calls)."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info


# --- a real `mugpos serve --transport streamable-http` configured for OAuth ------------------------


MugposServer = ServedProcess  # the name the auth tests use


def mugpos_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(
        {
            "MUGPOS_DETECTOR_WEIGHTS": "yolov8n.yaml",  # no analysis here: a random model is enough
            "MUGPOS_EMBEDDER": "none",
            "MUGPOS_DATA_DIR": str(tmp / "srvdata"),
            "MUGPOS_THREADS": "1",
            "MUGPOS_WARMUP": "false",
            "YOLO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


mugpos_server = mugpos_serve  # the name the auth and conformance tests use
