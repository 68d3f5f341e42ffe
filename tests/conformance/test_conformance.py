"""The official MCP conformance suite against a real `mugpos serve --transport streamable-http`.

`@modelcontextprotocol/conformance` 0.1.16 under Node 22 (CI: `npm_tool conformance ...`, so
MUGPOS_NPM_CONFORMANCE is its prefix). Every protocol scenario must pass; the scenarios that need the
suite's own fixture tools or capabilities mugpos does not offer are in expected-failures.yml, each
with its reason, and a listed scenario that starts passing fails the run (a stale baseline).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))
from tests_auth_support import free_port, mugpos_env, mugpos_server, node_binary

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
BASELINE = HERE / "expected-failures.yml"
PROTOCOL = (
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
)


def conformance_cli() -> Path | None:
    prefix = os.environ.get("MUGPOS_NPM_CONFORMANCE")
    if not prefix:
        return None
    cli = Path(prefix) / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    return cli if cli.exists() else None


def test_conformance_suite(tmp_path: Path) -> None:
    node, cli = node_binary(), conformance_cli()
    if node is None:
        pytest.skip("Node 22 not found (MUGPOS_NODE22 or node >= 22 on PATH); .ci/run installs it")
    if cli is None:
        pytest.skip(
            "conformance suite not installed: set MUGPOS_NPM_CONFORMANCE (.ci/run: npm_tool conformance)"
        )
    port = free_port()
    with mugpos_server(tmp_path, mugpos_env(tmp_path, MUGPOS_RATE_LIMIT_PER_MIN="100000"), port=port) as srv:
        proc = subprocess.run(
            [node, str(cli), "server", "--url", f"{srv.url}/mcp", "--expected-failures", str(BASELINE),
             "-o", str(tmp_path / "results")],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        log = srv.log()
    out = proc.stdout + proc.stderr
    summary = out[out.rfind("=== SUMMARY ===") :] if "=== SUMMARY ===" in out else out[-3000:]
    (tmp_path / "summary.txt").write_text(summary)
    print(summary)  # the summary line for the record (pytest -s, or the report in tmp_path)
    for name in PROTOCOL:
        line = re.search(rf"^\S+ {re.escape(name)}: (\d+) passed, (\d+) failed", summary, re.M)
        assert line, f"{name} did not run:\n{summary}"
        assert int(line[1]) >= 1 and line[2] == "0", f"protocol scenario {name} failed:\n{summary}"
    assert proc.returncode == 0, f"unexpected failures or a stale baseline:\n{summary}"
    assert "Traceback" not in log, log[-3000:]
