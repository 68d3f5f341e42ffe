"""The `mugpos://` resource URIs that results point to (the MCP door serves them)."""

from __future__ import annotations

RESOURCE_PREFIX = "mugpos://"


def analysis_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}analyses/{analysis_id}"


def annotated_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}analyses/{analysis_id}/annotated"


def layout_uri(analysis_id: str) -> str:
    return f"{RESOURCE_PREFIX}layouts/{analysis_id}"
