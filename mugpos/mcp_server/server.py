"""`build_server(app)`: the MCPServer with mugpos's tools, resources and prompts registered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mugpos import __version__
from mugpos.mcp_server.desk_app import desk_apps
from mugpos.mcp_server.prompts import register_prompts
from mugpos.mcp_server.tools import register_tools
from mugpos.operations import Mugpos
from mugpos.resources import register_resources

INSTRUCTIONS = (
    "mugpos sees where mugs stand in a photo and where they should stand. Start with analyze_image "
    "(a path, URL, data URI or base64 image); it returns an analysis_id, positions in pixels and "
    "cm, rule verdicts and an annotated picture. Then suggest_position(analysis_id=...) says where "
    "to move each mug. Rules are plain language ('keep mugs at least 6 inches from laptops'): "
    "explain_rule to check the wording, add_rule to save, list_rules/remove_rule to manage. "
    "mugpos://vocabulary lists the words rules can use; mugpos://status shows whether the models "
    "are warm (the first analysis waits for them and reports progress). Results are compact; "
    "detail='full' or mugpos://analyses/{analysis_id} has every box, relation and measurement."
)


WARMUP_DELAY_S = 0.3


class MugposMCPServer(MCPServer[Any]):
    """MCPServer whose prompts/get refuses an unknown name or a missing argument with -32602.

    The SDK (2.3) raises a ValueError there, answered with JSON-RPC code 0 and logged as an ERROR
    traceback; the spec says -32602 Invalid params, and a client's mistake is not a server error.
    Upstream: https://github.com/modelcontextprotocol/python-sdk/issues/3342 (and PR #3347). Drop
    this override once the SDK answers -32602 itself (tests/mcp pin the code).
    """

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Any = None
    ) -> Any:
        known = {p.name: p for p in await self.list_prompts()}
        prompt = known.get(name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name}", data={"known": sorted(known)})
        given = arguments or {}
        missing = [a.name for a in prompt.arguments or [] if a.required and a.name not in given]
        if missing:
            raise MCPError(
                INVALID_PARAMS, f"Missing required argument(s) for prompt {name}: {', '.join(missing)}"
            )
        return await super().get_prompt(name, arguments, context)


@contextmanager
def _logging_already_set_up() -> Iterator[None]:
    """Skip the SDK's `configure_logging` while the server is built, when logging is set up already.

    `MCPServer()` (2.3) calls it every time: it imports rich (~50 ms of a cold start) to build a
    RichHandler, then hands it to `logging.basicConfig`, which does nothing at all when the root
    logger has a handler, as it has under every mugpos door (the CLI and `python -m
    mugpos.mcp_server` configure stderr logging first). Without a handler the SDK's setup runs."""
    import mcp.server.mcpserver.server as sdk

    original = getattr(sdk, "configure_logging", None)
    if original is None or not logging.getLogger().handlers:
        yield
        return
    sdk.configure_logging = lambda *args, **kwargs: None
    try:
        yield
    finally:
        sdk.configure_logging = original


def build_server(app: Mugpos) -> MCPServer[Any]:
    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        # Warm the models in the background: initialize is answered without waiting for them.
        # The loader starts a moment later, so importing torch does not contend with the handshake
        # for the interpreter lock; a tool call that comes first starts it at once (start() is
        # idempotent). The app outlives a single connection (SSE runs one lifespan per client).
        # A load started before the server (stdio, no torch) holds only its warm stages: let them go.
        delay = 0.0 if app.engine.holding else WARMUP_DELAY_S
        handle = asyncio.get_running_loop().call_later(delay, app.start)
        try:
            yield None
        finally:
            handle.cancel()

    with _logging_already_set_up():
        server: MCPServer[Any] = MugposMCPServer(
            name="mugpos",
            title="mugpos: mug placement",
            version=__version__,
            instructions=INSTRUCTIONS,
            lifespan=lifespan,
            extensions=[desk_apps()],  # MCP Apps: the desk view resource (mcp_server/desk_app.py)
        )
    register_tools(server, app)
    register_resources(server, app)
    register_prompts(server, app)
    return server
