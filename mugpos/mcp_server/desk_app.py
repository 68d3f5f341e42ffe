"""The desk view: an MCP App (SEP-1865) attached to analyze_image and suggest_position.

A host that supports MCP Apps renders `ui://mugpos/desk.html` (plain HTML and JavaScript shipped in
the package) beside those tools' results: the photo with the mugs outlined, the rule verdicts, and
the suggested target as a dashed box the person can drag. On release the view asks the host to
call `suggest_position` with the scene where the mug stands at the new place, and shows the
verdicts there. Hosts without Apps ignore `_meta.ui` and get the same result as before.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from mcp.server.apps import Apps

DESK_URI = "ui://mugpos/desk.html"
UI_TOOLS = frozenset({"analyze_image", "suggest_position"})


def desk_html() -> str:
    return resources.files("mugpos.mcp_server").joinpath("static", "desk.html").read_text(encoding="utf-8")


def desk_apps() -> Apps:
    """The Apps extension with the desk view registered (pass to `MCPServer(extensions=[...])`)."""
    apps = Apps()
    apps.add_html_resource(
        DESK_URI,
        desk_html(),
        name="desk",
        title="mugpos desk view",
        description="The photo with mugs, verdicts and a draggable suggested place, re-checked on drop",
        prefers_border=True,
    )
    return apps


def tool_meta(name: str) -> dict[str, Any] | None:
    """`_meta` for a tool: the desk view for the two tools that show a desk, else nothing.

    The same `{"ui": {"resourceUri": ...}}` stamp `Apps.tool()` writes; set here because the tools
    are registered from the shared tool table rather than decorated one by one.
    """
    return {"ui": {"resourceUri": DESK_URI}} if name in UI_TOOLS else None
