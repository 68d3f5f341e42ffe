"""The first five minutes with the `mugpos` command: what a newcomer runs first, as real processes.

The CLI reads any file its user names (the sandbox guards the doors where someone else names the
path), offline never stalls, the bundled example runs end to end, exit statuses follow DESIGN.md,
`--no-store` keeps nothing, lines are not repeated, `status` tells the truth and hints speak the
CLI's words.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

OFFLINE_VARS = ("MUGPOS_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE")
EDGE_RULE = "Keep mugs at least 6 inches away from laptops"
MOVE_RULE = "Keep mugs in the left half of the image"  # coffee.png: the cup stands in the middle


def run(args: list[str], env: dict[str, str], *, drop: tuple[str, ...] = (), timeout: float = 240) -> Any:
    full = {k: v for k, v in {**os.environ, **env}.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "-m", "mugpos", *args], env=full, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory, coffee_png: Path) -> Path:
    """coffee.png copied to a folder that is not among MUGPOS_ALLOWED_DIRS."""
    path = tmp_path_factory.mktemp("not-allowed") / "my desk.png"
    shutil.copy(coffee_png, path)
    return path


@pytest.mark.slow
def test_cli_reads_a_file_outside_the_allowed_folders(app_env: dict[str, str], outside: Path) -> None:
    assert not any(outside.is_relative_to(d) for d in app_env["MUGPOS_ALLOWED_DIRS"].split(os.pathsep))
    res = run(["analyze", str(outside), "--json", "--no-store"], app_env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["mugs"][0]["object_id"] == "cup-1"


@pytest.mark.anyio
async def test_the_mcp_door_refuses_that_same_file(
    app_env: dict[str, str], outside: Path, tmp_path: Path
) -> None:
    from mcp import Client

    from mugpos.mcp_server import build_server
    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

    app = Mugpos(
        Settings(_env_file=None, **{k.removeprefix("MUGPOS_").lower(): v for k, v in app_env.items()})
    )
    try:
        async with Client(build_server(app)) as client:
            res = await client.call_tool("analyze_image", {"image": str(outside)})
    finally:
        await app.aclose()
    assert res.is_error and "outside the folders" in res.content[0].text
    assert "MUGPOS_ALLOWED_DIRS" in res.content[0].text


@pytest.mark.slow
def test_check_with_default_settings_offline_finishes_in_seconds(
    onnx_weights: Path, coffee_png: Path, tmp_path: Path
) -> None:
    """Default embedder (CLIP), no offline switch: check needs no CLIP, so it never waits for it."""
    env = {
        "MUGPOS_DETECTOR_WEIGHTS": str(onnx_weights),
        "XDG_DATA_HOME": str(tmp_path),
        "MUGPOS_THREADS": "2",
    }
    drop = (*OFFLINE_VARS, "MUGPOS_EMBEDDER", "MUGPOS_DATA_DIR", "MUGPOS_ALLOWED_DIRS")
    t0 = time.monotonic()
    res = run(["check", str(coffee_png), "--rule", EDGE_RULE], env, drop=drop, timeout=120)
    wall = time.monotonic() - t0
    assert res.returncode in (0, 1), res.stdout + res.stderr  # a verdict, not bad input
    assert "Keep mugs" in res.stdout
    assert "huggingface" not in res.stderr.lower() and "retry" not in res.stderr.lower(), res.stderr
    assert wall < 45, f"{wall:.1f} s: a bound that only a network stall (~50 s) would break"


@pytest.mark.slow
def test_analyze_offline_says_once_which_setting_turns_clip_off(
    onnx_weights: Path, coffee_png: Path, tmp_path: Path
) -> None:
    env = {
        "MUGPOS_DETECTOR_WEIGHTS": str(onnx_weights),
        "XDG_DATA_HOME": str(tmp_path),
        "MUGPOS_OFFLINE": "1",
        "MUGPOS_THREADS": "2",
    }
    drop = ("HF_HUB_OFFLINE", "YOLO_OFFLINE", "MUGPOS_EMBEDDER", "MUGPOS_DATA_DIR", "MUGPOS_ALLOWED_DIRS")
    t0 = time.monotonic()
    res = run(["analyze", str(coffee_png), "--no-store"], env, drop=drop, timeout=120)
    assert time.monotonic() - t0 < 45
    assert res.returncode == 0, res.stderr
    lines = (res.stdout + res.stderr).splitlines()
    clip = [line for line in lines if "CLIP" in line]
    assert len(clip) == 1 and "MUGPOS_EMBEDDER=none" in clip[0] and "MUGPOS_OFFLINE" in clip[0], lines
    noise = [
        line for line in lines if any(w in line.lower() for w in ("huggingface", "retry", "please check"))
    ]
    assert not noise, noise  # no retries, no warning cut off mid-word


@pytest.mark.slow
def test_example_runs_end_to_end(app_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "example.jpg"
    res = run(["analyze", "--example", "--annotated", str(out)], app_env)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "cup-1" in text and "where to move" in text and "Keep mugs" in text
    assert out.stat().st_size > 10_000 and (tmp_path / "example-moves.jpg").stat().st_size > 10_000
    assert "stored as" not in text  # the example keeps nothing
    doc = json.loads(run(["analyze", "--example", "--json", "--annotated", str(out)], app_env).stdout)
    assert (
        doc["analysis"]["mugs"] and "suggestions" in doc["suggestion"] and doc["analysis"]["resources"] == {}
    )


@pytest.mark.slow
def test_no_store_is_honest_and_suggest_says_each_line_once(
    app_env: dict[str, str], coffee_png: Path
) -> None:
    res = run(["analyze", str(coffee_png), "--no-store"], app_env)
    assert res.returncode == 0 and "stored as" not in res.stdout and "mugpos://" not in res.stdout
    doc = json.loads(run(["analyze", str(coffee_png), "--no-store", "--json"], app_env).stdout)
    assert doc["resources"] == {}
    kept = [p.name for p in Path(app_env["MUGPOS_DATA_DIR"]).rglob("*") if p.is_file()]
    assert not [n for n in kept if n.startswith(("annotated", "thumb"))], kept  # no pictures kept
    res = run(["suggest", str(coffee_png), "--rule", MOVE_RULE], app_env)
    assert res.returncode == 0, res.stderr
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    assert lines and len(lines) == len(set(lines)), res.stdout


def test_status_is_truthful_about_missing_weights(app_env: dict[str, str]) -> None:
    env = {
        **app_env,
        "MUGPOS_DETECTOR_WEIGHTS": "yolov8s.pt",
        "MUGPOS_EMBEDDER": "clip",
        "MUGPOS_OFFLINE": "1",
    }
    res = run(["status", "--json"], env, timeout=120)
    assert res.returncode == 0, res.stderr
    degraded = " ".join(json.loads(res.stdout)["degraded"])
    assert "detector" in degraded and "yolov8s.pt" in degraded
    assert "embedder" in degraded and "MUGPOS_EMBEDDER=none" in degraded
    human = run(["status"], env, timeout=120).stdout
    assert "degraded: detector" in human and "nothing degraded" not in human


def test_status_says_off_not_degraded_for_what_the_operator_switched_off(app_env: dict[str, str]) -> None:
    env = {**app_env, "MUGPOS_EMBEDDER": "none"}
    res = run(["status", "--json"], env, timeout=120)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert not any("embedder" in d for d in doc["degraded"]), doc["degraded"]
    assert any(d.startswith("embedder") and "MUGPOS_EMBEDDER=none" in d for d in doc["off"]), doc["off"]


def test_hints_speak_the_cli(app_env: dict[str, str], tmp_path: Path) -> None:
    res = run(["rules", "remove", "r-000000"], app_env)
    assert res.returncode == 2 and "mugpos rules list" in res.stderr and "list_rules" not in res.stderr
    res = run(["check", "--analysis", "a-19700101-nothing", "--rule", EDGE_RULE], app_env)
    assert res.returncode == 2 and "mugpos analyze" in res.stderr and "analyze_image" not in res.stderr
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps({"image": {"width": 10, "height": 10}, "objects": []}))
    res = run(["check", "--scene", str(scene), "--rule", "purple monkeys dishwasher"], app_env)
    assert res.returncode == 2 and "mugpos rules explain" in res.stderr and "add_rule" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = run(["analyze"], app_env)
    assert res.returncode == 2 and "--example" in res.stderr
