"""The CPU stages in worker processes (`mugpos.engine.cpu`): the same answers as in a thread, a killed
worker costs no call, nothing reaches stdout, the worker starts after the first answer and never
outlives its server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mugpos.engine.analysis import Analysis
from mugpos.engine.cpu import CpuStages
from mugpos.engine.pipeline import measure_desk_scene, measure_packed
from mugpos.operations.core import _evaluate
from mugpos.rules.grammar import parse_rule
from mugpos.scene.model import Scene
from mugpos.scene.positions import scale_of

pytestmark = pytest.mark.anyio


def _coco_scene(data_dir: Path, name: str = "000000000113") -> Scene:
    doc = json.loads((data_dir / "coco-cups" / "scenes" / f"{name}.json").read_text())
    return Scene.model_validate(doc.get("scene", doc))


@pytest.fixture
def stages() -> CpuStages:
    s = CpuStages(1)
    s.start()
    yield s
    s.close()


async def test_a_worker_measures_what_a_thread_measures(data_dir: Path, stages: CpuStages) -> None:
    scene = _coco_scene(data_dir)
    here = measure_desk_scene(scene)
    assert await stages.wait_warm()
    there = await stages.run(measure_packed, scene)
    assert stages.status()["in_thread"] == 0 and stages.status()["running"]
    for a, b in zip((here[0], *here[2:]), (there[0], *there[2:]), strict=True):
        dump = (lambda x: [m.model_dump() for m in x]) if isinstance(a, list) else (lambda x: x.model_dump())
        assert dump(a) == dump(b)
    # the desk comes back pickled; unpacked here it answers as the one measured here
    analysis = Analysis(
        image={"width": scene.image.width, "height": scene.image.height},
        scene=there[0],
        scale=there[2],
        surface=there[3],
        mugs=there[4],
        relations=there[5],
        embedder="none",
    )
    analysis.keep_desk(there[1])
    assert isinstance(there[1], bytes) and analysis._desk is None
    assert scale_of(analysis.desk).model_dump() == scale_of(here[1]).model_dump()
    rules = [parse_rule("keep mugs at least 20 cm from the cake", max_chars=500)]
    in_worker = await stages.run(_evaluate, rules, analysis)
    local = _evaluate(rules, analysis)
    assert [v.model_dump() for v in in_worker] == [v.model_dump() for v in local]
    assert in_worker[0].status in {"satisfied", "violated", "uncertain"}


async def test_a_killed_worker_costs_no_call(data_dir: Path, stages: CpuStages) -> None:
    assert await stages.wait_warm()
    first = await stages.run(os.getpid)
    assert first != os.getpid()
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.2)
    scene = _coco_scene(data_dir, "000000000332")
    measured = await stages.run(measure_packed, scene)  # answered (here, in a thread), not an error
    assert measured[0].objects and stages.status()["restarts"] == 1
    assert stages.status()["in_thread"] == 1
    assert await stages.wait_warm()  # the pool started anew
    second = await stages.run(os.getpid)
    assert second not in (first, os.getpid())


def test_no_worker_processes_means_threads() -> None:
    s = CpuStages(0)
    s.start()
    assert asyncio.run(s.run(os.getpid)) == os.getpid()
    assert s.status() | {"busy_s": 0} == {
        "processes": 0,
        "running": False,
        "warm": False,
        "calls": 1,
        "in_thread": 1,
        "restarts": 0,
        "busy_s": 0,
        "last_error": None,
    }


def test_workers_write_nothing_to_stdout() -> None:
    """stdout is the MCP stdio transport's channel: what a worker prints goes to stderr."""
    code = textwrap.dedent(
        """
        import asyncio
        from mugpos.engine.cpu import CpuStages

        if __name__ == "__main__":
            s = CpuStages(1)
            s.start()
            asyncio.run(s.wait_warm())
            asyncio.run(s.run(print, "printed in a worker"))
            s.close()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == ""
    assert "printed in a worker" in done.stderr


def test_the_worker_starts_after_the_first_answer_and_answers_alike(data_dir: Path, tmp_path: Path) -> None:
    """The first answer never shares the CPU with a worker's start: it is measured in a thread here;
    the worker starts after it, and from then on rules and moves run there, with the same verdicts."""
    code = textwrap.dedent(
        f"""
        import asyncio, time
        from mugpos.operations import Mugpos
        from mugpos.settings import Settings

        async def main():
            app = Mugpos(Settings(_env_file=None, detector_weights={str(data_dir / "models" / "yolov8n_int8.onnx")!r},
                embedder="none", device="cpu", data_dir={str(tmp_path / "data")!r},
                allowed_dirs=[{str(data_dir)!r}], cpu_processes=1))
            app.start()
            try:
                photo = {str(data_dir / "photos" / "coffee.png")!r}
                rules = ["keep mugs in the left half of the image"]
                out = await app.analyze(photo, rules=rules)
                cpu = app.engine.cpu.status()
                assert cpu["in_thread"] == 2 and not cpu["running"], cpu  # measure + rules, here
                deadline = time.monotonic() + 30
                while not app.engine.cpu.status()["running"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert await app.engine.cpu.wait_warm()
                again = await app.check(analysis_id=out.result.analysis_id, rules=rules)
                moved = await app.suggest(analysis_id=out.result.analysis_id, rules=rules)
                assert [v.model_dump() for v in again.rules] == [v.model_dump() for v in out.result.rules]
                assert moved.result.suggestions, moved.result
                cpu = app.engine.cpu.status()
                assert cpu["in_thread"] == 2 and cpu["calls"] >= 5, cpu
            finally:
                await app.aclose()

        if __name__ == "__main__":
            asyncio.run(main())
        """
    )
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_workers_do_not_outlive_a_killed_server() -> None:
    """A server killed outright (SIGKILL: no shutdown code runs) leaves no worker process behind."""
    code = textwrap.dedent(
        """
        import asyncio, os, sys, time
        from mugpos.engine.cpu import CpuStages

        if __name__ == "__main__":
            s = CpuStages(1)
            s.start()
            asyncio.run(s.wait_warm())
            print(asyncio.run(s.run(os.getpid)), flush=True)
            time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        os.kill(child, 0)  # alive while the server is
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        proc.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _broken_warmer() -> None:
    raise ImportError("no module named 'scipy' (a stand-in for a worker that cannot import)")


async def test_a_worker_that_cannot_warm_leaves_threads_and_says_why() -> None:
    s = CpuStages(1, warmers=(_broken_warmer,))
    s.start()
    assert not await s.wait_warm()
    deadline = time.monotonic() + 30
    while s.status()["processes"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    status = s.status()
    assert status["processes"] == 0 and not status["running"]
    assert "failed to start" in status["last_error"] and "scipy" in status["last_error"]
    assert await s.run(os.getpid) == os.getpid()  # the work still gets done, here
    s.close()
