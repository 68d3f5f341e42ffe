"""`mugpos bench` end to end on tiny settings: real models, real batcher, real cache; no timing asserts."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from mugpos.bench import add_bench_arguments, find_images, main, print_table, run_bench, synthetic_images
from mugpos.errors import ConfigError


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_bench_arguments(p)
    return p.parse_args(list(argv))


def test_arguments_and_defaults() -> None:
    a = _args()
    assert a.detector == "yolov8n.yaml" and a.device == "cpu" and a.concurrency == "1,4,16,64"
    a = _args("--quick", "--concurrency", "2,8", "--json", "--no-cold")
    assert a.quick and a.json and a.no_cold


def test_synthetic_images_when_no_data(tmp_path: Path) -> None:
    paths = synthetic_images(tmp_path / "s", n=3)
    from PIL import Image

    assert len(paths) == 3 and all(Image.open(p).size[0] == 640 for p in paths)
    found, source = find_images(tmp_path / "s", tmp_path)
    assert found == paths and source == str(tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        find_images(tmp_path / "empty", tmp_path)


def test_bad_concurrency_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--concurrency", "x", "--json", "--images", "/nonexistent"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["error"]["code"] == "config_error"


@pytest.mark.slow
def test_small_real_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    imgs = tmp_path / "imgs"
    synthetic_images(imgs, n=3)
    args = _args(
        "--quick",
        "--images", str(imgs),
        "--imgsz", "160",
        "--concurrency", "1,3",
        "--items", "3",
        "--repeat", "1",
        "--sections", "throughput,cache",
        "--clip-model", "none",
    )  # fmt: skip
    res = run_bench(args)
    tp = res["throughput"]
    assert "error" not in tp, tp
    assert {(r["concurrency"], r["batcher"]) for r in tp["runs"]} == {
        (1, "on"),
        (1, "off"),
        (3, "on"),
        (3, "off"),
    }
    assert all(r["images_per_s"] > 0 for r in tp["runs"])
    assert all(r["mean_batch"] == 1.0 for r in tp["runs"] if r["batcher"] == "off")
    assert tp["baseline"]["images_per_s"] > 0 and tp["baseline_matched_threads"]["images_per_s"] > 0
    l2 = res["cache"]["l2"]
    assert l2["answered_by"] == ["l2"]  # every repeat was a real L2 hit, not a recomputation
    if shutil.which("redis-server"):
        assert res["cache"]["l1"]["answered_by"] == ["l1"]  # L2 off: hits came from the private Redis
    assert res["bars"]["batched16_vs_baseline"]["pass"] is None  # no concurrency 16 in this run
    assert res["bars"]["l2_hit_speedup"]["value"] == l2["speedup"]
    assert res["memory"]["peak_rss_mb"] > 0
    print_table(res)
    table = capsys.readouterr().out
    assert "detector throughput" in table and "baseline" in table and "bars" in table
    json.dumps(res)  # the --json document is plain JSON
