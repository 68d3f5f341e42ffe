"""Helpers for the MCP tests: subprocess servers on free ports and the flow every transport must carry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testkit import free_port

REPO = Path(__file__).resolve().parents[2]


def child_env(app_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")}
    env.update(app_env)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def http_server(env: dict[str, str], transport: str, host: str = "127.0.0.1") -> Iterator[tuple[str, float]]:
    """A `python -m mugpos.mcp_server` HTTP server; yields its base URL and the spawn time."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mugpos.mcp_server",
            "--transport",
            transport,
            "--host",
            host,
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"server exited with {proc.returncode}: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError("server did not listen within 60 s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


RULE = "Keep mugs at least 6 inches away from laptops"


async def run_flow(client: object, image: str) -> dict[str, object]:
    """What every transport must carry: analyse, add a rule, suggest for the stored analysis, read it back."""
    import json

    from mcp import Client

    assert isinstance(client, Client)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    t0 = time.perf_counter()
    analyzed = await client.call_tool("analyze_image", {"image": image}, progress_callback=on_progress)
    analyze_s = time.perf_counter() - t0
    assert not analyzed.is_error, analyzed.content
    result = analyzed.structured_content
    assert result is not None
    assert [m["object_id"] for m in result["mugs"]] and result["mugs"][0]["object_id"].startswith("cup")
    images = [c for c in analyzed.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type.startswith("image/")
    aid = result["analysis_id"]

    added = await client.call_tool("add_rule", {"text": RULE})
    assert not added.is_error, added.content
    rule_id = added.structured_content["id"]

    suggested = await client.call_tool("suggest_position", {"analysis_id": aid})
    assert not suggested.is_error, suggested.content
    assert suggested.structured_content["analysis_id"] == aid
    assert any(r["text"] == RULE for r in suggested.structured_content["rules"])

    read = await client.read_resource(f"mugpos://analyses/{aid}")
    stored = json.loads(read.contents[0].text)
    assert stored["analysis_id"] == aid and stored["mugs"] == result["mugs"]
    return {"analysis_id": aid, "rule_id": rule_id, "analyze_s": analyze_s, "progress": progress}
