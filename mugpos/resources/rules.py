"""`mugpos://rules` (every saved rule) and `mugpos://rules/{rule_id}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mugpos.resources._common import JSON, guarded, to_json

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos


def register(server: MCPServer[Any], app: Mugpos) -> None:
    @server.resource(
        "mugpos://rules",
        name="rules",
        title="Saved placement rules",
        description="Every saved rule: id, text, interpretation, severity, enabled, the structured rule.",
        mime_type=JSON,
    )
    @guarded
    async def all_rules() -> str:
        return to_json(await app.list_rules())

    @server.resource(
        "mugpos://rules/{rule_id}",
        name="rule",
        title="One saved rule",
        description="One saved rule by id (ids come from list_rules or mugpos://rules).",
        mime_type=JSON,
    )
    @guarded
    async def one_rule(rule_id: str) -> str:
        return to_json(await app.get_rule(rule_id))
