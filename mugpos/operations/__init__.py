"""The one implementation of every operation; the CLI, the MCP tools and the RunPod worker call it.

- `core`: settings, engine, stores opened on first use, `Outcome`/`Picture`
- `rule_ops`, `analysis`, `search`: the operations, one mixin each; `app.Mugpos` combines them
- `calls`: the tool table (`TOOLS`, `call_tool`) for doors that dispatch by name
"""

from mugpos.operations.app import Mugpos
from mugpos.operations.calls import TOOLS, ToolSpec, call_tool
from mugpos.operations.core import CallTracker, EventSink, Outcome, Picture, Progress, new_analysis_id
from mugpos.results.uris import RESOURCE_PREFIX, analysis_uri, annotated_uri, layout_uri

__all__ = [
    "RESOURCE_PREFIX",
    "TOOLS",
    "CallTracker",
    "EventSink",
    "Mugpos",
    "Outcome",
    "Picture",
    "Progress",
    "ToolSpec",
    "analysis_uri",
    "annotated_uri",
    "call_tool",
    "layout_uri",
    "new_analysis_id",
]
