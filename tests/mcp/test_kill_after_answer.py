"""Nothing a call reported as stored is lost when the server is killed right after answering.

The server journals an analysis (fsynced) before answering and writes the stores behind the answer.
Here the blob store is an S3 endpoint that accepts connections and never replies (a storage outage),
so the background write cannot finish; the server answers `analyze_image`, is SIGKILLed at once,
and the layout store holds nothing. A new server on the same data folder, with S3 back (a local
moto server stands in for R2), replays the journal: the analysis, its picture and a suggestion for
it are all there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_helpers import REPO, child_env, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@contextmanager
def black_hole() -> Iterator[str]:
    """An endpoint that accepts TCP connections into its backlog and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def moto() -> Iterator[str]:
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(app_env: dict[str, str], endpoint: str) -> dict[str, str]:
    return child_env(
        app_env,
        MUGPOS_BLOB_STORE="s3",
        MUGPOS_S3_ENDPOINT_URL=endpoint,
        MUGPOS_S3_BUCKET="mugpos-kill-test",
        MUGPOS_S3_REGION="us-east-1",
        MUGPOS_S3_ACCESS_KEY_ID="test",
        MUGPOS_S3_SECRET_ACCESS_KEY="test",
    )


async def analyze_then_kill(env: dict[str, str], image: Path) -> dict[str, object]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mugpos", "serve", "--transport", "streamable-http", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "the server did not come up"
                time.sleep(0.05)
        async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as client:
            res = await client.call_tool(
                "analyze_image", {"image": str(image), "use_saved_rules": False, "detail": "full"}
            )
            proc.send_signal(signal.SIGKILL)  # right after the answer: no shutdown, no flush
        assert not res.is_error, res.content
        return res.structured_content or {}
    finally:
        proc.kill()
        proc.wait(10)


async def test_an_answered_analysis_survives_a_kill(app_env: dict[str, str], coffee_png: Path) -> None:
    data = Path(app_env["MUGPOS_DATA_DIR"])
    with black_hole() as dead_s3:
        result = await analyze_then_kill(s3_env(app_env, dead_s3), coffee_png)
    aid = str(result["analysis_id"])
    assert result["resources"] and not any("not stored" in w for w in result["warnings"])  # type: ignore[union-attr]
    records = data / "layouts" / "records.jsonl"
    assert not records.exists() or aid not in records.read_text()  # only the journal has it
    (wal,) = (data / "journal").glob("*.wal")
    assert aid.encode() in wal.read_bytes()

    with moto() as s3:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mugpos", "serve"], env=s3_env(app_env, s3), cwd=str(REPO)
        )
        async with Client(params) as client:
            read = await client.read_resource(f"mugpos://analyses/{aid}")
            stored = json.loads(read.contents[0].text)
            assert stored["analysis_id"] == aid and stored["mugs"] == result["mugs"]
            assert stored["scale"] == result["scale"]
            picture = await client.read_resource(f"mugpos://analyses/{aid}/annotated")
            assert picture.contents[0].mime_type.startswith("image/")
            suggested = await client.call_tool(
                "suggest_position",
                {"analysis_id": aid, "rules": ["keep mugs at least 5 cm from the table edge"]},
            )
            assert not suggested.is_error, suggested.content
        import boto3

        s3c = boto3.client(
            "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        keys = {o["Key"] for o in s3c.list_objects_v2(Bucket="mugpos-kill-test").get("Contents", [])}
        assert any(k.endswith(f"{aid}/annotated.jpeg") for k in keys), keys
        assert any(k.endswith(f"{aid}/thumb.jpeg") for k in keys), keys
    assert aid in records.read_text()
    assert not [p for p in (data / "journal").glob("*.wal") if p.stat().st_size], "the replayed journal stays"


def test_journal_replays_only_dead_processes(tmp_path: Path) -> None:
    """A live process's journal is left alone; a dead one's pending entries come back once."""
    from mugpos.stores.journal import Journal

    code = (
        "import asyncio, os, sys\n"
        "from mugpos.stores.journal import Entry, Journal\n"
        "j = Journal(sys.argv[1])\n"
        "async def main():\n"
        "    await j.append(Entry('a1', {'n': 1}, {'p': b'x' * 10}))\n"
        "    await asyncio.gather(*(j.append(Entry(f'b{i}', {}, {})) for i in range(5)))\n"
        "    j.done('b0')\n"
        "    print('ready', j.commits, j.entries, flush=True)\n"
        "    if sys.argv[2] == 'die':\n"
        "        os._exit(0)\n"
        "    sys.stdin.readline()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    live = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), "live"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert live.stdout is not None
        # group commit: the five appends made together share one fsync (after a1's own)
        assert live.stdout.readline().split() == [b"ready", b"2", b"6"]
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), "die"], env=env, check=True, capture_output=True
        )
        mine = Journal(tmp_path)
        (orphan,) = mine.orphans()  # the live process's file is locked, so not an orphan
        path, entries = orphan
        assert [e.id for e in entries] == ["a1", "b1", "b2", "b3", "b4"]
        assert entries[0].header == {"n": 1} and entries[0].parts == {"p": b"x" * 10}
        mine.forget(path)
        assert mine.orphans() == []
        mine.close()
        assert not mine.path.exists()  # a clean close with nothing pending leaves no file
    finally:
        live.kill()
        live.wait()
    assert len(Journal(tmp_path).orphans()) == 1  # the live one, now dead, is replayable


def test_torn_tail_is_dropped() -> None:
    from mugpos.stores.journal import Entry, _frame, pending_entries

    whole = _frame(b"E", Entry("x", {}, {}).encode()) + _frame(b"E", Entry("y", {}, {}).encode())
    assert [e.id for e in pending_entries(whole)] == ["x", "y"]
    assert [e.id for e in pending_entries(whole[:-3])] == ["x"]  # killed mid-write: never acknowledged
    flipped = bytearray(whole)
    flipped[-1] ^= 0xFF
    assert [e.id for e in pending_entries(bytes(flipped))] == ["x"]
