"""Bearer-token verifiers in the MCP SDK's `TokenVerifier` shape: a static token and OAuth JWTs.

`JwtVerifier` is the resource-server half of the MCP authorization spec: RFC 9068 JWT access tokens
checked against the issuer's JWKS (found by RFC 8414 / OpenID discovery, cached, re-read when a
token names a key id it has not seen, at most once per cooldown), with issuer, audience (the RFC
8707 resource: this server's public /mcp URL), expiry and signature algorithm checked. Scopes come
from `scope` (space separated) or `scp`.

Tokens are never logged or kept: the `AccessToken.token` we hand the SDK is a fingerprint.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from mcp.server.auth.provider import AccessToken

from mugpos.access import ALL_SCOPES
from mugpos.access.hosts import is_loopback_name
from mugpos.errors import ConfigError

log = logging.getLogger("mugpos.access")

# Asymmetric algorithms only: "none" and HMAC (a shared secret the client could also hold) never.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})


def fingerprint(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def token_matches(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class StaticTokenVerifier:
    """`MUGPOS_AUTH_TOKEN`: one shared secret, compared in constant time, holding every scope."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token_matches(token, self._token):
            return None
        return AccessToken(token=fingerprint(token), client_id="token", scopes=list(ALL_SCOPES))


class TokenRejected(Exception):
    """Why a JWT was refused (for logs and tests; the client only learns `invalid_token`)."""


def check_issuer_url(issuer: str) -> str:
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"MUGPOS_OAUTH_ISSUER {issuer!r} is not an http(s) URL", hint="e.g. https://auth.example.com"
        )
    if parts.scheme == "http" and not is_loopback_name(parts.hostname.lower()):
        raise ConfigError(
            "MUGPOS_OAUTH_ISSUER must use https (plain http only on loopback, for tests)",
            hint=f"use https://{parts.netloc}{parts.path}",
        )
    return issuer.rstrip("/") if parts.path in ("", "/") else issuer


def discovery_urls(issuer: str) -> list[str]:
    """RFC 8414 first (path inserted after the host), then both OpenID Connect spellings."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-authorization-server{path}"]
    if path:
        urls.append(f"{origin}/.well-known/openid-configuration{path}")
    urls.append(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
    return list(dict.fromkeys(urls))


class JwksCache:
    """The issuer's signing keys by `kid`: fetched on first use, kept `ttl_s`, re-read on a new kid."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        ttl_s: float = 300.0,
        refresh_cooldown_s: float = 10.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.ttl_s = ttl_s
        self.refresh_cooldown_s = refresh_cooldown_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.keys: dict[str | None, jwt.PyJWK] = {}
        self.fetched_at: float | None = None
        self.fetches = 0  # how many times the key set was read (tests, metrics)
        self.failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        now = self.clock()
        stale = self.fetched_at is None or now - self.fetched_at >= self.ttl_s
        if stale or (kid not in self.keys and self._may_refresh(now)):
            await self._refresh(stale)
        if kid in self.keys:
            return self.keys[kid]
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        raise TokenRejected(f"no signing key {kid!r} in the issuer's key set")

    def _may_refresh(self, now: float) -> bool:
        return self.fetched_at is None or now - self.fetched_at >= self.refresh_cooldown_s

    async def _refresh(self, stale: bool) -> None:
        async with self._lock:
            now = self.clock()
            if self.fetched_at is not None and not stale and not self._may_refresh(now):
                return  # another request refreshed while we waited
            if (
                not self.keys
                and self.failed_at is not None
                and now - self.failed_at < self.refresh_cooldown_s
            ):
                # The issuer is down: do not make every request wait on it (or hammer it).
                raise TokenRejected("the issuer's keys could not be read; retrying after the cooldown")
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as http:
                    if self.jwks_url is None:
                        self.jwks_url = await self._discover(http)
                    r = await http.get(self.jwks_url, headers={"Accept": "application/json"})
                    r.raise_for_status()
                    data = r.json()
            except (httpx.HTTPError, ValueError, TokenRejected) as exc:
                self.failed_at = self.clock()
                log.warning("could not read the issuer's keys from %s: %s: %s",
                            self.jwks_url or self.issuer, type(exc).__name__, exc)  # fmt: skip
                if self.keys:  # keep serving with the keys we have; try again after the cooldown
                    self.fetched_at = self.clock() - self.ttl_s + self.refresh_cooldown_s
                    return
                raise TokenRejected(
                    f"could not read the issuer's keys: {type(exc).__name__}: {exc}"
                ) from None
            keys: dict[str | None, jwt.PyJWK] = {}
            for jwk in data.get("keys", []) if isinstance(data, dict) else []:
                if jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct":
                    continue
                try:
                    keys[jwk.get("kid")] = jwt.PyJWK.from_dict(jwk)
                except jwt.PyJWTError:
                    continue  # an algorithm this build cannot use
            self.keys = keys
            self.fetched_at = self.clock()
            self.fetches += 1
            log.info("read %d signing key(s) from %s", len(keys), self.jwks_url)

    async def _discover(self, http: httpx.AsyncClient) -> str:
        for url in discovery_urls(self.issuer):
            try:
                r = await http.get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError:
                continue
            if r.status_code != 200:
                continue
            meta = r.json()
            if str(meta.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
                raise TokenRejected(f"{url} names issuer {meta.get('issuer')!r}, not {self.issuer!r}")
            if meta.get("jwks_uri"):
                return str(meta["jwks_uri"])
        raise TokenRejected(f"no authorization server metadata with a jwks_uri for {self.issuer}")


class JwtVerifier:
    """Verify RFC 9068 JWT access tokens for one resource (audience) from one issuer."""

    def __init__(
        self,
        issuer: str,
        audience: str | list[str],
        *,
        keys: JwksCache | None = None,
        leeway_s: float = 30.0,
        accept_plain_jwt: bool = False,
    ) -> None:
        self.issuer = check_issuer_url(issuer)
        self.audiences = [audience] if isinstance(audience, str) else list(audience)
        self.keys = keys or JwksCache(self.issuer)
        self.leeway_s = leeway_s
        self.accept_plain_jwt = accept_plain_jwt

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            return await self.verify(token)
        except TokenRejected as exc:
            log.info("refused a bearer token %s: %s", fingerprint(token), exc)
            return None

    async def verify(self, token: str) -> AccessToken:
        """The token's `AccessToken`, or `TokenRejected` saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("not a JWT") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejected(f"signature algorithm {alg!r} is not accepted")
        typ = str(header.get("typ", "")).lower()
        if typ not in AT_JWT_TYPES and not (self.accept_plain_jwt and typ in ("", "jwt")):
            raise TokenRejected(f"token type {typ or 'none'!r} is not an access token (RFC 9068 at+jwt)")
        key = await self.keys.key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,  # the raw key: the header's (allow-listed) alg decides, not the JWK's guess
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # a key of the wrong type raises plain errors
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        resource = next(a for a in self.audiences if a in aud)
        return AccessToken(
            token=fingerprint(token),
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown"),
            scopes=scopes_of(claims),
            expires_at=int(claims["exp"]),
            resource=resource,
            subject=str(claims["sub"]) if claims.get("sub") is not None else None,
            claims={"iss": claims["iss"]},
        )


def scopes_of(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return [s for s in raw.split() if s]
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return []
