"""What makes a line a JSON-RPC 2.0 message: shared by stdio (`stdio.py`) and HTTP (`auth.McpGate`).

Its own module so that the stdio server, which needs only this, does not import the HTTP access
stack (httpx, PyJWT, cryptography: ~0.25 s of a cold start before the first answer).
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = -32600


def envelope_problem(message: Any) -> str | None:
    """Why `message` is not a JSON-RPC 2.0 request, notification or response, or None."""
    if not isinstance(message, dict):
        return "a JSON-RPC message must be an object"
    if message.get("jsonrpc") != "2.0":
        return 'the "jsonrpc" member must be exactly "2.0"'
    request_id = message.get("id")
    valid_id = isinstance(request_id, str | int) and not isinstance(request_id, bool)
    if "id" in message and not valid_id and (request_id is not None or "method" in message):
        return 'the "id" member must be a string or an integer'
    if "method" in message:
        return None if isinstance(message["method"], str) else 'the "method" member must be a string'
    if "result" in message or "error" in message:
        return None
    return 'a request needs a "method" member'
