"""The A2A door of a real `mugpos serve` with OAuth on (a real oidc-provider) and the static token:
the public card names both schemes as enforced, with the token endpoint from the issuer's metadata;
the a2a-sdk client gets in with an OAuth token; the read scope may list rules but not add them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import new_text_part
from a2a.types import Message, Role, SendMessageRequest, TaskState
from google.protobuf.json_format import MessageToDict
from tests_auth_support import BOTH, STATIC_TOKEN, MugposServer, OidcServer

pytestmark = pytest.mark.anyio


async def ask(server: MugposServer, token: str, text: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    client = await create_client(
        server.url,
        client_config=ClientConfig(
            streaming=False, httpx_client=httpx.AsyncClient(headers=headers, timeout=60)
        ),
    )
    msg = Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[new_text_part(text)])
    events = [ev async for ev in client.send_message(SendMessageRequest(message=msg))]
    await client.close()
    return events[-1].task


def test_card_is_public_and_names_both_enforced_schemes(server: MugposServer, oidc: OidcServer) -> None:
    card = httpx.get(f"{server.url}/.well-known/agent-card.json", timeout=30).json()
    schemes = card["securitySchemes"]
    assert set(schemes) == {"bearer", "oauth2"}
    assert card["securityRequirements"] == [{"schemes": {"bearer": {}}}, {"schemes": {"oauth2": {}}}]
    flow = schemes["oauth2"]["oauth2SecurityScheme"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == oidc.metadata()["token_endpoint"]
    assert set(flow["scopes"]) == {"mugpos:read", "mugpos:write"}
    assert httpx.post(f"{server.url}/a2a", json={}, timeout=30).status_code == 401


async def test_oauth_tokens_and_scopes_on_a2a(server: MugposServer, oidc: OidcServer, resource: str) -> None:
    full = oidc.token("full", resource, BOTH)
    added = await ask(server, full, "add rule: keep mugs at least 20 cm from laptops")
    assert added.status.state == TaskState.TASK_STATE_COMPLETED
    rule_id = MessageToDict(added.artifacts[0].parts[0].data)["id"]

    reader = oidc.token("reader", resource, "mugpos:read")
    listed = await ask(server, reader, "list rules")
    assert rule_id in [r["id"] for r in MessageToDict(listed.artifacts[0].parts[0].data)["rules"]]
    refused = await ask(server, reader, f"remove rule {rule_id}")
    assert refused.status.state == TaskState.TASK_STATE_REJECTED
    assert MessageToDict(refused.status.message.parts[1].data)["error"]["code"] == "insufficient_scope"

    removed = await ask(server, STATIC_TOKEN, f"remove rule {rule_id}")  # the static token holds every scope
    assert MessageToDict(removed.artifacts[0].parts[0].data) == {"id": rule_id, "removed": True}
