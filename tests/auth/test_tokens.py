"""`JwtVerifier` and `JwksCache` in process, against a real oidc-provider: each refusal for its reason.

The HTTP tests show what a client sees (401/403); these pin *why* a token is refused, so a refusal for
the wrong reason (say, a network error instead of a bad signature) cannot pass unnoticed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests_auth_support import BOTH, OidcServer, claims_of, free_port, oidc_server, rsa_jwk, tamper

from mugpos.access.tokens import JwksCache, JwtVerifier, TokenRejected, discovery_urls
from mugpos.errors import ConfigError

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
RESOURCE = "https://mugpos.example/mcp"


def verifier(oidc: OidcServer, **kw: Any) -> JwtVerifier:
    keys = JwksCache(oidc.issuer, refresh_cooldown_s=kw.pop("cooldown", 0.0))
    return JwtVerifier(oidc.issuer, RESOURCE, keys=keys, leeway_s=kw.pop("leeway", 0.0), **kw)


async def rejected(v: JwtVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        await v.verify(token)
    assert await v.verify_token(token) is None
    return str(info.value)


async def test_a_valid_token_becomes_an_access_token(oidc: OidcServer) -> None:
    v = verifier(oidc)
    token = oidc.token("full", RESOURCE, BOTH)
    at = await v.verify(token)
    assert at.client_id == "full" and set(at.scopes) == {"mugpos:read", "mugpos:write"}
    assert at.resource == RESOURCE and at.claims == {"iss": oidc.issuer}
    assert at.expires_at == claims_of(token)["exp"]
    assert token not in at.token and at.token.startswith("sha256:")  # never kept, never passed on
    assert v.keys.jwks_url == oidc.metadata()["jwks_uri"]  # found by discovery


async def test_each_bad_token_for_its_reason(
    oidc: OidcServer, oidc_keys: list[dict[str, Any]], tmp_path: Path
) -> None:
    v = verifier(oidc)
    good = oidc.token("full", RESOURCE, BOTH)
    assert "Audience" in await rejected(v, oidc.token("full", "https://elsewhere.example/mcp", BOTH))
    assert "Signature" in await rejected(v, tamper(good, scope="mugpos:write admin"))
    assert "not a JWT" in await rejected(v, "abc.def")
    with oidc_server(tmp_path, oidc_keys) as impostor:  # same key, other issuer
        assert "Issuer" in await rejected(v, impostor.token("full", RESOURCE, BOTH))
    with oidc_server(tmp_path, [rsa_jwk("unknown-key")]) as stranger:
        assert "no signing key 'unknown-key'" in await rejected(v, stranger.token("full", RESOURCE, BOTH))
    short = oidc.token("short", RESOURCE, BOTH)
    time.sleep(max(0.0, claims_of(short)["exp"] - time.time()) + 1.2)
    assert "Expired" in await rejected(v, short)
    assert (await v.verify(good)).client_id == "full"  # and the good one still passes


async def test_an_id_token_style_jwt_is_not_an_access_token(oidc: OidcServer) -> None:
    import base64
    import json

    token = oidc.token("full", RESOURCE, BOTH)
    header, payload, sig = token.split(".")
    h = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    h["typ"] = "JWT"
    forged = base64.urlsafe_b64encode(json.dumps(h).encode()).rstrip(b"=").decode() + f".{payload}.{sig}"
    assert "at+jwt" in await rejected(verifier(oidc), forged)


async def test_plain_jwt_typ_only_when_the_operator_allows_it(
    oidc: OidcServer, oidc_keys: list[dict[str, Any]]
) -> None:
    """Some issuers (Auth0, Entra ID setups) sign access tokens with `typ: JWT`. Signed here with the
    provider's own key and claims, such a token is refused by default (RFC 9068 wants at+jwt) and
    accepted with MUGPOS_OAUTH_ACCEPT_PLAIN_JWT; a wrong audience is refused either way."""
    import jwt
    from jwt.algorithms import RSAAlgorithm

    key = RSAAlgorithm.from_jwk(oidc_keys[0])
    claims = claims_of(oidc.token("full", RESOURCE, BOTH))
    plain = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "JWT", "kid": oidc_keys[0]["kid"]})
    assert "at+jwt" in await rejected(verifier(oidc), plain)
    lenient = verifier(oidc, accept_plain_jwt=True)
    assert (await lenient.verify(plain)).client_id == "full"
    elsewhere = jwt.encode(
        claims | {"aud": "https://elsewhere.example/mcp"}, key, algorithm="RS256",
        headers={"typ": "JWT", "kid": oidc_keys[0]["kid"]},
    )  # fmt: skip
    assert "Audience" in await rejected(lenient, elsewhere)


async def test_keys_cached_then_rotated(needs_oidc: None, tmp_path: Path) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    keys = JwksCache(issuer, refresh_cooldown_s=0.0)
    v = JwtVerifier(issuer, RESOURCE, keys=keys)
    with oidc_server(tmp_path, [rsa_jwk("k-old")], port=port) as before:
        old = before.token("full", RESOURCE, BOTH)
        for _ in range(5):
            await v.verify(old)
        assert keys.fetches == 1 and before.hits("/jwks") == 1  # cached
    with oidc_server(tmp_path, [rsa_jwk("k-new"), rsa_jwk("k-next")], port=port) as after:
        new = after.token("full", RESOURCE, BOTH)
        assert (await v.verify(new)).client_id == "full"
        assert keys.fetches == 2 and set(keys.keys) == {"k-new", "k-next"}  # re-read on the new kid
        assert "no signing key 'k-old'" in await rejected(v, old)


async def test_refresh_cooldown_limits_rereads(oidc: OidcServer, tmp_path: Path) -> None:
    """Tokens naming unknown keys cannot make us hammer the issuer: one re-read per cooldown."""
    v = verifier(oidc, cooldown=3600.0)
    await v.verify(oidc.token("full", RESOURCE, BOTH))
    with oidc_server(tmp_path, [rsa_jwk("stranger")]) as stranger:
        foreign = stranger.token("full", RESOURCE, BOTH)
    for _ in range(5):
        await rejected(v, foreign)
    assert v.keys.fetches == 1


async def test_issuer_must_be_https_off_loopback() -> None:
    with pytest.raises(ConfigError):
        JwtVerifier("http://auth.example.com", RESOURCE)
    JwtVerifier("https://auth.example.com", RESOURCE)
    JwtVerifier("http://127.0.0.1:9", RESOURCE)
    assert discovery_urls("https://auth.example.com/tenant1") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]


async def test_issuer_down_then_up(needs_oidc: None, tmp_path: Path) -> None:
    """While the issuer is unreachable tokens are refused at once (no wait on every request, no
    hammering); after the cooldown the keys are read and the same token passes."""
    now = [1000.0]
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    keys = JwksCache(issuer, refresh_cooldown_s=60.0, clock=lambda: now[0])
    v = JwtVerifier(issuer, RESOURCE, keys=keys)
    key = rsa_jwk("k1")
    with oidc_server(tmp_path, [key], port=port) as up:
        token = up.token("full", RESOURCE, BOTH)
    assert "could not read the issuer's keys" in await rejected(v, token)  # down
    with oidc_server(tmp_path, [key], port=port) as up:
        assert "retrying after the cooldown" in await rejected(v, token)
        assert up.hits("/jwks") == 0
        now[0] += 61
        assert (await v.verify(token)).client_id == "full"
        assert up.hits("/jwks") == 1
