"""`mugpos bench --sections dashboard`: a served analysis with and without an open dashboard.

No timing is asserted (the machine is shared); the section must run end to end, the open page must
have received one event per analysis made while it was open, and the report must print.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from mugpos.bench import add_bench_arguments, print_table, run_bench


@pytest.mark.slow
def test_dashboard_section_runs(test_data: Path, onnx_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(
        ["--quick", "--sections", "dashboard", "--images", str(test_data / "photos"),
         "--detector", str(onnx_weights), "--clip-model", "none"]
    )  # fmt: skip
    result = run_bench(args)
    d = result["dashboard"]
    assert "error" not in d and "skipped" not in d, d
    assert d["calls_each"] >= 3 and d["events_seen_by_dashboard"] == d["calls_each"]
    assert d["median_ms"]["with"] > 0 and d["median_ms"]["without"] > 0
    assert d["recording_us_per_call"] > 0
    out = io.StringIO()
    print_table(result, file=out)
    assert "dashboard open" in out.getvalue()
