"""`mugpos://analyses/{id}` (JSON), `.../annotated` (the picture) and `mugpos://layouts/{id}`.

Analyses live in the layout store, so these URIs outlive the process that made them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.resources import BinaryResource, ResourceTemplate

from mugpos.operations import Mugpos
from mugpos.resources._common import JSON, guarded, to_json

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.mcpserver import Context

ANNOTATED_URI = "mugpos://analyses/{analysis_id}/annotated"


class _PictureTemplate(ResourceTemplate):
    """Reports the stored picture's own mime type (webp, jpeg or png), not one fixed at registration."""

    async def create_resource(self, uri: str, params: dict[str, Any], context: Context[Any, Any]) -> Any:
        picture = await self.fn(**params)
        return BinaryResource(
            uri=uri,
            name=self.name,
            title=self.title,
            description=self.description,
            mime_type=picture.mime,
            data=picture.data,
        )


def register(server: MCPServer[Any], app: Mugpos) -> None:
    @server.resource(
        "mugpos://analyses/{analysis_id}",
        name="analysis",
        title="A stored analysis",
        description="The full analyze_image result for an analysis_id: objects, mugs, scale, "
        "relations, rule verdicts.",
        mime_type=JSON,
    )
    @guarded
    async def analysis(analysis_id: str) -> str:
        return to_json(await app.get_analysis(analysis_id))

    @server.resource(
        "mugpos://layouts/{analysis_id}",
        name="layout",
        title="A stored layout",
        description="The layout kept for search: scene, scale, labels, summary, layout vector.",
        mime_type=JSON,
    )
    @guarded
    async def layout(analysis_id: str) -> str:
        return to_json(await app.get_layout(analysis_id))

    @guarded
    async def annotated(analysis_id: str) -> Any:
        return await app.get_annotated(analysis_id)

    template = _PictureTemplate.from_function(
        annotated,
        uri_template=ANNOTATED_URI,
        name="annotated",
        title="Annotated picture of an analysis",
        description="The analysis picture with boxes, mug positions and distances drawn on it.",
        mime_type=f"image/{app.settings.annotated_format}",
    )
    # Missing public API: `MCPServer.resource()` fixes one mime type per template at registration,
    # and there is no public way to add a `ResourceTemplate` subclass (ResourceManager.add_template,
    # itself reached only through the private `_resource_manager`, builds a plain template from a
    # function). Stored pictures keep the format they were drawn in (webp, jpeg or png), so the
    # subclass that reports each read's own type is registered directly; checked by
    # tests/mcp/test_inmemory.py, which reads an annotated picture back through the SDK client.
    server._resource_manager._templates[template.uri_template] = template
