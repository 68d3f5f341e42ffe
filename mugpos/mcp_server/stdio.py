"""stdio with JSON-RPC envelope errors answered, not dropped.

The SDK (2.3) reads each stdin line with pydantic and, when a line is not a JSON-RPC message (not
JSON, no `"jsonrpc": "2.0"`, a method that is not a string), hands the validation error to the
server loop, which drops it: the client waits for an answer that never comes. JSON-RPC 2.0 says to
answer -32700 Parse error or -32600 Invalid Request (with the request's id when it can be read).
Upstream: https://github.com/modelcontextprotocol/python-sdk/pull/2857 (issue #2848) and #3557 for
HTTP (handled in `mugpos.mcp_server.auth.McpGate`). Drop this once the SDK answers them itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError
from pydantic import ValidationError

from mugpos.mcp_server.envelope import INVALID_REQUEST, envelope_problem

if TYPE_CHECKING:
    from mcp.server import MCPServer

log = logging.getLogger("mugpos.mcp")
PARSE_ERROR = -32700


def envelope_error(exc: ValidationError) -> JSONRPCError:
    """The JSON-RPC error answering the line that failed validation with `exc`."""
    errors = exc.errors()
    if errors and errors[0].get("type") == "json_invalid":
        return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=PARSE_ERROR, message="Parse error"))
    # Each union member reports its own errors; the ones about a missing member carry the whole
    # message as their input (a wrong-typed member carries only that member's value).
    inputs = [e.get("input") for e in errors]
    raw: Any = next((i for i in inputs if isinstance(i, dict)), inputs[0] if inputs else None)
    request_id = raw.get("id") if isinstance(raw, dict) else None
    if not (isinstance(request_id, str | int) and not isinstance(request_id, bool)):
        request_id = None
    problem = envelope_problem(raw) or "not a JSON-RPC 2.0 message"
    return JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=ErrorData(code=INVALID_REQUEST, message=f"Invalid Request: {problem}"),
    )


class AnsweringReadStream:
    """The stdio read stream, minus the validation errors, which are answered on the write stream."""

    def __init__(self, inner: Any, write: Any) -> None:
        self._inner = inner
        self._write = write

    def __getattr__(self, name: str) -> Any:  # last_context and whatever else the loop asks for
        return getattr(self._inner, name)

    async def _filter(self, item: Any) -> bool:
        if isinstance(item, ValidationError):
            answer = envelope_error(item)
            log.info("answered a line that is not a JSON-RPC message with %d", answer.error.code)
            await self._write.send(SessionMessage(answer))
            return False
        return True

    async def receive(self) -> Any:
        while True:
            item = await self._inner.receive()
            if await self._filter(item):
                return item

    def __aiter__(self) -> AnsweringReadStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            item = await self._inner.__anext__()
            if await self._filter(item):
                return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> AnsweringReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)


async def run_stdio(server: MCPServer[Any]) -> None:
    """`server.run_stdio_async()`, with envelope errors answered (the SDK's own body, one proxy more)."""
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async itself runs
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(
            AnsweringReadStream(read_stream, write_stream),  # type: ignore[arg-type]
            write_stream,
            lowlevel.create_initialization_options(),
        )
