"""Fixtures for the auth tests: a real oidc-provider and a real `mugpos serve` that trusts it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests_auth_support import (
    STATIC_TOKEN,
    MugposServer,
    OidcServer,
    free_port,
    missing_reason,
    mugpos_env,
    mugpos_server,
    oidc_server,
    rsa_jwk,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def needs_oidc() -> None:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def oidc_keys() -> list[dict[str, Any]]:
    return [rsa_jwk("key-1")]


@pytest.fixture(scope="module")
def oidc(
    needs_oidc: None, oidc_keys: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcServer]:
    with oidc_server(tmp_path_factory.mktemp("oidc"), oidc_keys) as server:
        yield server


@pytest.fixture(scope="module")
def server(oidc: OidcServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MugposServer]:
    """mugpos with OAuth on, the static token too, keys re-read at once, no clock leeway."""
    tmp = tmp_path_factory.mktemp("mugpos")
    port = free_port()
    env = mugpos_env(
        tmp,
        MUGPOS_OAUTH_ISSUER=oidc.issuer,
        MUGPOS_PUBLIC_URL=f"http://127.0.0.1:{port}",
        MUGPOS_AUTH_TOKEN=STATIC_TOKEN,
        MUGPOS_OAUTH_LEEWAY_S="0",
        MUGPOS_OAUTH_JWKS_REFRESH_COOLDOWN_S="0",
        MUGPOS_RATE_LIMIT_PER_MIN="100000",
    )
    with mugpos_server(tmp, env, port=port) as srv:
        yield srv


@pytest.fixture(scope="module")
def resource(server: MugposServer) -> str:
    return server.url + "/mcp"
