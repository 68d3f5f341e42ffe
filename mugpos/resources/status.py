"""`mugpos://status`: device, models and whether they are warm, cache tiers and hit rates, stores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mugpos.resources._common import JSON, guarded, to_json

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from mugpos.operations import Mugpos


def register(server: MCPServer[Any], app: Mugpos) -> None:
    @server.resource(
        "mugpos://status",
        name="status",
        title="Engine status",
        description="Version, device, models (loading/ready, load times), batching, cache tiers and "
        "hit rates, stores, and anything degraded. Read it when a tool is slow or fails.",
        mime_type=JSON,
    )
    @guarded
    async def engine_status() -> str:
        return to_json(await app.status())
