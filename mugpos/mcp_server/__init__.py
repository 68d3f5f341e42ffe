"""The MCP server: tools, resources, prompts, transports and HTTP auth over `mugpos.operations`.

Importing this package loads neither the MCP SDK nor any model library; `build_server` and `serve`
import what they need when called, so `initialize` is answered before torch is even imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos


def build_server(app: Mugpos) -> MCPServer[Any]:
    from mugpos.mcp_server.server import build_server as build

    return build(app)


def serve(app: Mugpos, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765) -> None:
    from mugpos.mcp_server.transports import serve as run

    run(app, transport, host, port)


__all__ = ["build_server", "serve"]
