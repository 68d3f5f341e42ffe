"""MCP-specific access: which scope each JSON-RPC method needs, and envelope errors as the spec says.

`McpGate` wraps the SDK's HTTP app (behind `mugpos.access.guard.HttpGuard`, which has already
authenticated the caller). It reads each POSTed JSON-RPC message once and

- answers a message that is not a JSON-RPC 2.0 envelope (no `"jsonrpc": "2.0"`, no string method)
  with -32600 Invalid Request, echoing the id. The SDK answers -32602 with a pydantic dump; upstream:
  https://github.com/modelcontextprotocol/python-sdk/issues/3557 (drop this once a release fixes it);
- refuses a call the caller's token does not cover with HTTP 403 and an RFC 6750
  `insufficient_scope` challenge naming the scope, so an OAuth client can step up (MCP authorization
  spec, "Scope challenge handling"): `mugpos:read` for analysis, search, rules listing, resources and
  prompts; `mugpos:write` for rule changes.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mugpos.access import READ, WRITE, caller_from_scope, refusal
from mugpos.access.guard import TokenBucket  # re-exported: older imports use mcp_server.auth
from mugpos.access.tokens import token_matches
from mugpos.mcp_server.envelope import INVALID_REQUEST, envelope_problem

TOOL_SCOPES: dict[str, str] = {
    "analyze_image": READ,
    "suggest_position": READ,
    "search_similar_layouts": READ,
    "list_rules": READ,
    "explain_rule": READ,
    "add_rule": WRITE,
    "remove_rule": WRITE,
}
METHOD_SCOPES: dict[str, str] = {
    "resources/read": READ,
    "resources/subscribe": READ,
    "prompts/get": READ,
    "completion/complete": READ,
}


def scopes_for(message: dict[str, Any]) -> list[str]:
    """The scopes one JSON-RPC request needs; listing and the handshake need only a valid token."""
    method = message.get("method")
    if method == "tools/call":
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        return [TOOL_SCOPES.get(str(name), WRITE)]  # an unknown tool: the strictest answer
    scope = METHOD_SCOPES.get(str(method))
    return [scope] if scope else []


def _id_of(message: Any) -> str | int | None:
    if isinstance(message, dict):
        value = message.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return None


class McpGate:
    def __init__(self, app: ASGIApp, *, enforce_scopes: bool) -> None:
        self.app = app
        self.enforce_scopes = enforce_scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body, tail = await _read_body(receive)
        try:
            parsed = json.loads(body) if body else None
        except (ValueError, RecursionError):
            parsed = None  # not JSON: the SDK answers -32700 Parse error itself
        messages = parsed if isinstance(parsed, list) else [parsed] if parsed is not None else []
        for message in messages:
            problem = envelope_problem(message)
            if problem is not None:
                await _jsonrpc_error(
                    send, 400, _id_of(message), INVALID_REQUEST, f"Invalid Request: {problem}"
                )
                return
        if self.enforce_scopes:
            who = caller_from_scope(scope)
            needed = sorted({s for m in messages if isinstance(m, dict) for s in scopes_for(m)})
            missing = needed if who is None else who.missing(*needed)
            if missing:
                status, payload, headers = refusal(scope, missing)
                await _send(send, status, payload, headers)
                return
        await self.app(scope, _replay(body, tail, receive), send)


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole request body (the guard in front bounds it), and a disconnect seen on the way."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, tail: Message | None, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if tail is not None:
            return tail
        return await receive()

    return replay


async def _jsonrpc_error(
    send: Send, status: int, request_id: str | int | None, code: int, message: str
) -> None:
    payload = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    await _send(send, status, json.dumps(payload).encode(), {})


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


__all__ = ["TOOL_SCOPES", "McpGate", "TokenBucket", "envelope_problem", "scopes_for", "token_matches"]
