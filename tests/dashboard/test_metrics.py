"""/metrics read by a real Prometheus: the numbers it stores are the calls that really happened.

A guarded mugpos HTTP server serves real tool calls from an SDK client (two analyses of one photo,
one refused call, a rule, a suggestion); Debian's Prometheus, started here on loopback with the
bearer token in its scrape config, scrapes `/metrics`, and its query API must give back those
counts. A forked worker's counters are summed in multi-process mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from operator_helpers import TOKEN, mcp_client, prometheus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_value(prom: str, expr: str, want: float | None = None, timeout_s: float = 30) -> float:
    """The value of a one-series query once Prometheus has it (and, if given, once it equals `want`)."""
    deadline = time.time() + timeout_s
    last: list[dict[str, Any]] = []
    while time.time() < deadline:
        last = query(prom, expr)
        if len(last) == 1:
            value = float(last[0]["value"][1])
            if want is None or value == want:
                return value
        time.sleep(0.3)
    raise AssertionError(f"{expr}: wanted {want}, Prometheus has {last}")


async def test_prometheus_reads_real_tool_calls(server: str, coffee_png: Path, tmp_path: Path) -> None:
    bare = httpx.get(f"{server}/metrics")
    assert bare.status_code == 401, "/metrics must sit behind the same token as /mcp"

    async with mcp_client(server) as client:
        for _ in range(2):
            done = await client.call_tool("analyze_image", {"image": str(coffee_png)})
            assert not done.is_error, done.content
        aid = done.structured_content["analysis_id"]
        refused = await client.call_tool("analyze_image", {"image": "/etc/hostname"})
        assert refused.is_error
        added = await client.call_tool("add_rule", {"text": "keep mugs in the left half"})
        assert not added.is_error, added.content
        moved = await client.call_tool("suggest_position", {"analysis_id": aid})
        assert not moved.is_error, moved.content

    target = server.removeprefix("http://")
    with prometheus(tmp_path, target, TOKEN) as prom:
        results = {
            'up{job="mugpos"}': wait_value(prom, 'up{job="mugpos"}', 1),
            'mugpos_tool_calls_total{tool="analyze_image",outcome="ok"}': wait_value(
                prom, 'mugpos_tool_calls_total{tool="analyze_image",outcome="ok"}', 2
            ),
            'mugpos_tool_calls_total{tool="analyze_image",outcome="refused"}': wait_value(
                prom, 'mugpos_tool_calls_total{tool="analyze_image",outcome="refused"}', 1
            ),
            'sum(mugpos_tool_calls_total{outcome="ok"})': wait_value(
                prom, 'sum(mugpos_tool_calls_total{outcome="ok"})', 4
            ),
            'mugpos_errors_total{code="path_not_allowed"}': wait_value(
                prom, 'mugpos_errors_total{code="path_not_allowed"}', 1
            ),
            'mugpos_stage_seconds_count{stage="total"}': wait_value(
                prom, 'mugpos_stage_seconds_count{stage="total"}', 2
            ),
            'mugpos_stage_seconds_sum{stage="detect"}': wait_value(
                prom, 'mugpos_stage_seconds_sum{stage="detect"}'
            ),
            'mugpos_cache_hits_total{tier="l2"}': wait_value(prom, 'mugpos_cache_hits_total{tier="l2"}'),
            'mugpos_cache_misses_total{tier="l2"}': wait_value(prom, 'mugpos_cache_misses_total{tier="l2"}'),
            'sum(mugpos_batch_size_count{model="detector"})': wait_value(
                prom, 'sum(mugpos_batch_size_count{model="detector"})'
            ),
            "mugpos_models_ready": wait_value(prom, "mugpos_models_ready", 1),
            'mugpos_model_load_seconds{model="detector"}': wait_value(
                prom, 'mugpos_model_load_seconds{model="detector"}'
            ),
            'mugpos_queue_depth{model="detector"}': wait_value(
                prom, 'mugpos_queue_depth{model="detector"}', 0
            ),
            'mugpos_cache_bytes{tier="l2"}': wait_value(prom, 'mugpos_cache_bytes{tier="l2"}'),
            'histogram_quantile(0.5, sum by (le) (mugpos_stage_seconds_bucket{stage="total"}))': wait_value(
                prom, 'histogram_quantile(0.5, sum by (le) (mugpos_stage_seconds_bucket{stage="total"}))'
            ),
        }
    print("\nPrometheus query results:")
    for expr, value in results.items():
        print(f"  {expr} = {value:g}")
    assert results['mugpos_cache_hits_total{tier="l2"}'] >= 1  # the second analysis of the photo
    assert results['mugpos_stage_seconds_sum{stage="detect"}'] > 0
    assert results['mugpos_cache_bytes{tier="l2"}'] > 0
    assert results['mugpos_model_load_seconds{model="detector"}'] > 0


def test_forked_workers_are_summed(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, a forked worker's calls count in the parent's /metrics."""
    script = textwrap.dedent(
        """
        import os, sys
        from mugpos import telemetry
        pid = os.fork()
        if pid == 0:
            telemetry.record_call("analyze_image", "ok", 0.5)
            telemetry.record_call("analyze_image", "refused", 0.01, "bad_image")
            telemetry.QUEUE_DEPTH.labels(model="detector").set(3)
            os._exit(0)
        os.waitpid(pid, 0)
        telemetry.record_call("analyze_image", "ok", 0.25)
        telemetry.QUEUE_DEPTH.labels(model="detector").set(1)
        sys.stdout.write(telemetry.render().decode())
        telemetry.mark_process_dead(pid)
        sys.stdout.write("----\\n" + telemetry.render().decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.split("----\n")
    assert 'mugpos_tool_calls_total{outcome="ok",tool="analyze_image"} 2.0' in before
    assert 'mugpos_errors_total{code="bad_image"} 1.0' in before
    assert 'mugpos_tool_seconds_count{tool="analyze_image"} 3.0' in before
    assert 'mugpos_queue_depth{model="detector"} 4.0' in before  # livesum over both workers
    assert 'mugpos_queue_depth{model="detector"} 1.0' in after  # the dead worker's gauge is gone
    assert 'mugpos_tool_calls_total{outcome="ok",tool="analyze_image"} 2.0' in after  # counts stay


def test_docs_and_grafana_name_only_real_metrics() -> None:
    """Every metric docs/operations.md and the Grafana dashboard mention is one /metrics exposes."""
    import json
    import re

    from mugpos import telemetry

    exposed: set[str] = set()
    for line in telemetry.render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exposed.add(name)
            if kind == "histogram":
                exposed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    docs = Path(__file__).resolve().parents[2] / "docs"
    grafana = json.loads((docs / "grafana-mugpos.json").read_text())
    exprs = " ".join(t["expr"] for p in grafana["panels"] for t in p["targets"])
    used = set(re.findall(r"\bmugpos_[a-z_]+", exprs))
    assert used and used <= exposed, used - exposed
    documented = set(re.findall(r"`(mugpos_[a-z_]+)`", (docs / "operations.md").read_text()))
    assert documented <= exposed, documented - exposed
    required = {  # DESIGN.md "The HTTP doors"
        "mugpos_tool_calls_total", "mugpos_stage_seconds", "mugpos_cache_hits_total",
        "mugpos_cache_misses_total", "mugpos_batch_size", "mugpos_queue_depth", "mugpos_models_ready",
    }  # fmt: skip
    assert required <= exposed and required <= documented
