"""The official MCP Inspector CLI against the stdio server.

The Inspector is an npm package; `.ci/run` installs it. Tests find it through `MUGPOS_INSPECTOR`
(an npm prefix holding node_modules/@modelcontextprotocol/inspector) or a few known prefixes, and
skip with a reason when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_helpers import REPO, child_env

PACKAGE = Path("node_modules") / "@modelcontextprotocol" / "inspector"
pytestmark = pytest.mark.slow
KNOWN = [REPO / ".ci" / "inspector", REPO / ".ci" / "node", REPO, Path("/tmp/mugpos-inspector")]


@pytest.fixture(scope="module")
def inspector() -> Path:
    env = os.environ.get("MUGPOS_INSPECTOR")
    candidates = [Path(env)] if env else KNOWN
    for prefix in candidates:
        if (prefix / PACKAGE / "package.json").is_file() and shutil.which("npx"):
            return prefix
    pytest.skip("MCP Inspector not installed: npm install --prefix DIR @modelcontextprotocol/inspector@0.15, "
                "then set MUGPOS_INSPECTOR=DIR")  # fmt: skip


def _inspect(prefix: Path, env: dict[str, str], *args: str) -> dict:
    cmd = ["npx", "--no-install", "@modelcontextprotocol/inspector", "--cli",
           sys.executable, "-m", "mugpos.mcp_server", *args]  # fmt: skip
    done = subprocess.run(cmd, cwd=prefix, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-1500:])
    return json.loads(done.stdout)


def test_inspector_lists_everything(inspector: Path, app_env: dict[str, str]) -> None:
    env = child_env(app_env, PYTHONPATH=str(REPO))
    tools = {t["name"] for t in _inspect(inspector, env, "--method", "tools/list")["tools"]}
    assert tools == {"analyze_image", "suggest_position", "search_similar_layouts", "add_rule", "list_rules",
                     "remove_rule", "explain_rule"}  # fmt: skip
    resources = {r["uri"] for r in _inspect(inspector, env, "--method", "resources/list")["resources"]}
    assert resources == {"mugpos://rules", "mugpos://status", "mugpos://vocabulary", "ui://mugpos/desk.html"}
    templates = _inspect(inspector, env, "--method", "resources/templates/list")["resourceTemplates"]
    assert "mugpos://analyses/{analysis_id}/annotated" in {t["uriTemplate"] for t in templates}
    prompts = {p["name"] for p in _inspect(inspector, env, "--method", "prompts/list")["prompts"]}
    assert {"review_my_desk", "set_up_workspace_rules"} <= prompts


def test_inspector_calls_analyze_image(inspector: Path, app_env: dict[str, str], coffee_png: Path) -> None:
    env = child_env(app_env, PYTHONPATH=str(REPO))
    result = _inspect(
        inspector,
        env,
        "--method",
        "tools/call",
        "--tool-name",
        "analyze_image",
        "--tool-arg",
        f"image={coffee_png}",
    )
    assert not result.get("isError"), result
    mugs = result["structuredContent"]["mugs"]
    assert mugs and mugs[0]["object_id"].startswith("cup")
    images = [c for c in result["content"] if c["type"] == "image"]
    assert len(images) == 1 and images[0]["mimeType"].startswith("image/") and len(images[0]["data"]) > 1000
