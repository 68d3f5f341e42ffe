"""The RunPod worker through the runpod SDK's own local modes (`--test_input`, `--rp_serve_api`).

Each test starts the real worker process, which loads the real COCO detector (int8 ONNX) and runs the
same `call_tool` the MCP server runs; its output is compared with an in-process `call_tool` result
for the same input. Nothing of the SDK is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from receiver import Receiver
from testkit import free_port, stop_process

from mugpos.deploy.runpod_worker import handler, parse_job_input
from mugpos.errors import MugposError

REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path | None:
    d = Path(os.environ.get("MUGPOS_TEST_DATA") or REPO.parent / "shared" / "data").resolve()
    return d if (d / "photos" / "coffee.png").is_file() else None


DATA = data_dir()
needs_data = pytest.mark.skipif(DATA is None, reason="test data not found: set MUGPOS_TEST_DATA")
RULE = "Keep mugs at least 6 inches away from laptops"
HOOK_SECRET = "whsec-worker-test-0123456789"
# What differs between two runs of the same analysis: identity, time and where it is stored.
VOLATILE = {"analysis_id", "created_at", "timings", "resources", "took_ms"}


def worker_env(tmp: Path) -> dict[str, str]:
    assert DATA is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUGPOS_", "RUNPOD_"))}
    env.update(
        {
            "MUGPOS_DETECTOR_WEIGHTS": str(DATA / "models" / "yolov8n_int8.onnx"),
            "MUGPOS_EMBEDDER": "none",
            "MUGPOS_DATA_DIR": str(tmp),
            "MUGPOS_ALLOWED_DIRS": str(DATA),
            "MUGPOS_THREADS": "2",
            "MUGPOS_WORKER_CONCURRENCY": "4",
            "YOLO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_test_input(job: dict[str, Any], tmp: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mugpos.deploy.runpod_worker", "--test_input", json.dumps(job)],
        cwd=REPO,
        env=worker_env(tmp),
        capture_output=True,
        text=True,
        timeout=240,
    )
    return proc, time.perf_counter() - t0


def worker_result(stdout: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("mugpos-worker result: ")]
    assert len(lines) == 1, stdout[-3000:]
    return json.loads(lines[0].removeprefix("mugpos-worker result: "))


def cold_start(stderr: str) -> dict[str, Any]:
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("mugpos-worker cold start summary: ")]
    return json.loads(line.removeprefix("mugpos-worker cold start summary: "))


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`call_tool` in this process, with the same settings as the worker (its own data folder)."""
    for k, v in worker_env(tmp_path / "in-process").items():
        monkeypatch.setenv(k, v)
    from mugpos.settings import Settings, get_settings

    get_settings.cache_clear()

    async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        from mugpos.operations import Mugpos, call_tool

        app = Mugpos(Settings())
        try:
            outcome = await call_tool(app, tool, arguments)
        finally:
            await app.aclose()
        return {"result": outcome.result.model_dump(mode="json"), "picture": outcome.picture}

    yield call
    get_settings.cache_clear()


def stable(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def assert_same_as_mcp(worker_out: dict[str, Any], local: dict[str, Any], tool: str) -> None:
    from PIL import Image

    assert worker_out["tool"] == tool
    got, want = worker_out["result"], local["result"]
    assert set(got) == set(want)
    assert stable(got) == stable(want)
    assert local["picture"] is not None and worker_out["image"] is not None
    assert worker_out["image"]["mime"] == local["picture"].mime
    img = Image.open(io.BytesIO(base64.b64decode(worker_out["image"]["base64"])))
    assert img.size == Image.open(io.BytesIO(local["picture"].data)).size


@needs_data
@pytest.mark.slow
@pytest.mark.anyio
async def test_test_input_analyze_image_matches_call_tool(tmp_path: Path, in_process) -> None:
    photo = str(DATA / "photos" / "coffee.png")
    job = {"input": {"tool": "analyze_image", "arguments": {"image": photo, "detail": "full"}}}
    proc, wall = run_test_input(job, tmp_path / "worker")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "completed successfully" in proc.stdout  # the SDK's own local-mode verdict
    assert "Job result: {'output': {'tool': 'analyze_image', 'result': {" in proc.stdout
    out = worker_result(proc.stdout)
    assert out["result"]["mugs"], "the real detector finds the cup in coffee.png"
    cup = next(o for o in out["result"]["scene"]["objects"] if o["label"] == "cup")
    x1, y1, x2, y2 = cup["box"]
    assert abs(x1 - 170) < 25 and abs(y1 - 17) < 25 and abs(x2 - 424) < 25 and abs(y2 - 325) < 25
    assert_same_as_mcp(
        out, await in_process("analyze_image", {"image": photo, "detail": "full"}), "analyze_image"
    )

    timeline = cold_start(proc.stderr)
    stages = timeline["stages_s"]
    order = ["python start", "mugpos imported", "model load started", "runpod imported", "first answer"]
    assert [stages[s] for s in order] == sorted(stages[s] for s in order)
    assert "models ready" in stages and stages["models ready"] <= stages["first answer"]
    assert stages["first answer"] <= wall
    print(f"\ncold start (wall {wall:.2f}s): {json.dumps(timeline)}")


@needs_data
@pytest.mark.slow
@pytest.mark.anyio
async def test_test_input_suggest_position_matches_call_tool(tmp_path: Path, in_process) -> None:
    photo = str(DATA / "photos" / "coffee.png")
    args = {"image": photo, "rules": [RULE], "use_saved_rules": False}
    proc, _ = run_test_input({"input": {"tool": "suggest_position", "arguments": args}}, tmp_path / "w")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = worker_result(proc.stdout)
    assert [r["text"] for r in out["result"]["rules"]] == [RULE]
    assert_same_as_mcp(out, await in_process("suggest_position", args), "suggest_position")


@needs_data
@pytest.mark.slow
def test_test_input_bad_image_fails_the_job_cleanly(tmp_path: Path) -> None:
    job = {"input": {"tool": "analyze_image", "arguments": {"image": "/etc/passwd"}}}
    proc, _ = run_test_input(job, tmp_path)
    assert proc.returncode == 1  # the SDK's local mode exits 1 on a failed job
    (line,) = [ln for ln in proc.stdout.splitlines() if "Job local_test failed with error: " in ln]
    err = json.loads(line.split("failed with error: ", 1)[1])
    assert err["code"] in {"path_not_allowed", "access_denied"} and "MUGPOS_ALLOWED_DIRS" in err["hint"]
    assert "Traceback" not in proc.stdout + proc.stderr


@needs_data
@pytest.mark.slow
@pytest.mark.anyio
async def test_local_api_server_runsync(tmp_path: Path, in_process) -> None:
    """The worker's own API server (`--rp_serve_api`): the same answer as in process, a clean job
    error for a bad job, and the webhook event of the analysis delivered, signed, from the worker."""
    port = free_port()
    rx = Receiver(HOOK_SECRET).start()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mugpos.deploy.runpod_worker",
            "--rp_serve_api",
            "--rp_api_port",
            str(port),
            "--rp_api_host",
            "127.0.0.1",
        ],
        cwd=REPO,
        env=worker_env(tmp_path / "api")
        | {
            "MUGPOS_WEBHOOK_URLS": rx.url,
            "MUGPOS_WEBHOOK_SECRET": HOOK_SECRET,
            "MUGPOS_WEBHOOK_EVENTS": "analysis.completed",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        photo = str(DATA / "photos" / "coffee.png")
        job = {"input": {"tool": "analyze_image", "arguments": {"image": photo, "use_saved_rules": False}}}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, "the worker's API server exited"
                try:
                    resp = await client.post("/runsync", json=job)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API server never came up"
                    time.sleep(0.3)
            assert resp.status_code == 200
            body = resp.json()
            assert body["status"] == "COMPLETED", body
            local = await in_process("analyze_image", job["input"]["arguments"])
            assert_same_as_mcp(body["output"], local, "analyze_image")

            bad = await client.post("/runsync", json={"input": {"tool": "no_such_tool"}})
            failed = bad.json()
            assert failed["status"] == "FAILED"
            assert json.loads(failed["error"])["code"] == "unknown_tool"

            deadline = time.monotonic() + 30
            while not rx.handled and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        (event,) = rx.bodies.values()
        assert event["type"] == "analysis.completed" and rx.bad_signatures == 0
        assert event["data"]["analysis_id"] == body["output"]["result"]["analysis_id"]
    finally:
        stop_process(proc, timeout_s=20)
        rx.stop()


# --- the handler in process: input errors never need the models ---------------------------


@pytest.mark.parametrize(
    ("job", "code"),
    [
        ({"input": "analyze"}, "bad_input"),
        ({"input": {"arguments": {}}}, "bad_input"),
        ({"input": {"tool": "analyze_image", "arguments": [1]}}, "bad_input"),
        ({"input": {"tool": "analyze_image", "extra": 1}}, "bad_input"),
        ({"input": {"tool": "analyze_image", "return_image": "yes"}}, "bad_input"),
        ({"input": {"tool": "no_such_tool"}}, "unknown_tool"),
        ({"input": {"tool": "analyze_image", "arguments": {"picture": "x"}}}, "bad_arguments"),
    ],
)
@pytest.mark.anyio
async def test_bad_jobs_become_job_errors(
    job: dict[str, Any], code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if DATA is not None:  # the app the handler wakes loads the small real detector, not a download
        for k, v in worker_env(tmp_path).items():
            monkeypatch.setenv(k, v)
    from mugpos.settings import get_settings

    get_settings.cache_clear()
    out = await handler({"id": "t", **job})
    assert set(out) == {"error"}
    err = json.loads(out["error"])
    assert err["code"] == code and err["message"] and err["hint"]


def test_parse_job_input_defaults() -> None:
    assert parse_job_input({"input": {"tool": "list_rules"}}) == ("list_rules", {}, True)
    assert parse_job_input({"input": {"tool": "x", "arguments": {"a": 1}, "return_image": False}}) == (
        "x",
        {"a": 1},
        False,
    )


def _counted(text: str, tool: str, outcome: str) -> float:
    line = f'mugpos_tool_calls_total{{outcome="{outcome}",tool="{tool}"}} '
    hit = [ln for ln in text.splitlines() if ln.startswith(line)]
    return float(hit[0].split()[-1]) if hit else 0.0


@pytest.mark.anyio
async def test_calls_through_the_tool_table_are_counted(in_process: Any) -> None:
    """The worker and the A2A agent call `call_tool`; the operator's metrics count them like MCP calls."""
    from mugpos import telemetry

    before = telemetry.render().decode()
    await in_process("list_rules", {})
    with pytest.raises(MugposError):
        await in_process("list_rules", {"nope": 1})
    after = telemetry.render().decode()
    assert _counted(after, "list_rules", "ok") == _counted(before, "list_rules", "ok") + 1
    assert _counted(after, "list_rules", "refused") == _counted(before, "list_rules", "refused") + 1
