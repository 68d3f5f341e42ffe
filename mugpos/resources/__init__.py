"""MCP resources under `mugpos://`: rules, analyses and their pictures, layouts, status, vocabulary.

Each module registers its resources on an `MCPServer` through one `register(server, app)`; the
content comes from `mugpos.operations.Mugpos`, so the resources show exactly what the tools return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos


def register_resources(server: MCPServer[Any], app: Mugpos) -> None:
    from mugpos.resources import analyses, rules, status, vocabulary

    for module in (rules, analyses, status, vocabulary):
        module.register(server, app)


__all__ = ["register_resources"]
