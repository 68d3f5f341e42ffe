"""Webhooks: signing, the JS-compatible body, and the outbox under faults (a receiver that fails,
stalls past the timeout, goes down while mugpos restarts, and comes back): nothing lost, nothing
handled twice."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from receiver import Receiver

from mugpos.stores.outbox import Delivery, SqliteOutbox
from mugpos.webhooks.dispatcher import WebhookConfig, WebhookDispatcher, backoff_delay
from mugpos.webhooks.payload import encode_body, js_number
from mugpos.webhooks.signing import sign, verify

pytestmark = pytest.mark.anyio
SECRET = "whsec-test-0123456789"


@pytest.mark.parametrize(
    ("x", "js"),
    [(2.0, "2"), (15.24, "15.24"), (1e-05, "0.00001"), (1.5e-07, "1.5e-7"), (1e21, "1e+21"),
     (-0.5, "-0.5"), (0.1 + 0.2, "0.30000000000000004"), (3e-06, "0.000003"), (-0.0, "0")],
)  # fmt: skip
def test_numbers_are_written_as_javascript_writes_them(x: float, js: str) -> None:
    assert js_number(x) == js


def test_body_round_trips_through_javascript_json() -> None:
    """`JSON.stringify(JSON.parse(body)) === body` in a real Node: what an n8n expression rebuilds."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not on PATH")
    body = encode_body(
        {"id": "evt_1", "data": {"cm": [2.0, 15.24, 1e-05, 0.1 + 0.2, 123456.0], "t": "café \u2028 \"q\"\n",
                                 "n": None, "ok": True, "nested": [{"a": -1.5}]}}
    )  # fmt: skip
    out = subprocess.run(
        [node, "-e", "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(JSON.stringify(JSON.parse(s))))"],
        input=body.encode(), capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.decode() == body


def test_signature_covers_timestamp_and_body() -> None:
    now = 1_780_000_000
    sig = sign(SECRET, now, '{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, str(now), b'{"a":1}', sig, now=now + 10)
    assert not verify(SECRET, str(now), b'{"a":2}', sig, now=now)  # body changed
    assert not verify(SECRET, str(now + 1), b'{"a":1}', sig, now=now)  # timestamp changed
    assert not verify("other", str(now), b'{"a":1}', sig, now=now)  # wrong secret
    assert not verify(SECRET, str(now), b'{"a":1}', sig, now=now + 301)  # replay too old
    assert not verify(SECRET, None, b'{"a":1}', sig, now=now)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    mid = [backoff_delay(a, 2.0, 900.0, rand=lambda: 0.5) for a in range(1, 12)]
    assert mid[:4] == [2.0, 4.0, 8.0, 16.0] and mid[-1] == 900.0
    assert backoff_delay(3, 2.0, 900.0, rand=lambda: 0.0) == 6.0
    assert backoff_delay(3, 2.0, 900.0, rand=lambda: 1.0) == 10.0


def _config(url: str, **kw: object) -> WebhookConfig:
    base: dict[str, object] = dict(urls=[url], secret=SECRET, timeout_s=0.5, backoff_s=0.05,
                                   backoff_max_s=0.4, max_attempts=60, lease_s=3.0, poll_s=0.1)  # fmt: skip
    base.update(kw)
    return WebhookConfig(**base)  # type: ignore[arg-type]


async def _drain(outbox: SqliteOutbox, timeout_s: float = 60.0) -> dict[str, int]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        counts = await outbox.counts()
        if counts["pending"] == 0:
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox not drained: {await outbox.counts()}")


async def test_outbox_survives_failures_stalls_downtime_and_restart(tmp_path: Path) -> None:
    """The fault test: its figures (sent, retried, lost, doubled) are printed for the report."""
    db = tmp_path / "outbox.sqlite"
    rx = Receiver(SECRET).start()
    rx.script = ["fail"] * 6 + ["stall"] * 3 + ["fail", "ok", "fail"]
    rx.stall_s = 1.2
    d1 = WebhookDispatcher(SqliteOutbox(db), _config(rx.url))
    d1.start()
    published = [await d1.publish("analysis.completed", {"n": i, "cm": 2.0}) for i in range(20)]
    await _drain(d1.outbox)

    # The receiver goes down; mugpos keeps publishing, then stops (restart) with deliveries pending.
    port = rx.port
    rx.stop()
    published += [await d1.publish("rule.violated", {"n": 100 + i}) for i in range(10)]
    await asyncio.sleep(0.5)  # a few refused attempts while it is down
    await d1.aclose()
    pending = await SqliteOutbox(db).counts()
    assert pending["pending"] == 10

    # mugpos comes back as two senders sharing the outbox; the receiver comes back on its port.
    rx2 = Receiver(SECRET, port=port)
    rx2.handled, rx2.arrivals, rx2.bodies = rx.handled, rx.arrivals, rx.bodies  # memory across its restart
    rx2.start()
    senders = [WebhookDispatcher(SqliteOutbox(db), _config(rx2.url)) for _ in range(2)]
    for s in senders:
        s.start()
    published += [await senders[i % 2].publish("suggestion.made", {"n": 200 + i}) for i in range(10)]
    counts = await _drain(senders[0].outbox)
    for s in senders:
        await s.aclose()
    rx2.stop()

    ids = [p for p in published if p is not None]
    assert len(ids) == 40
    lost = [i for i in ids if rx2.handled[i] == 0]
    doubled = [i for i, n in rx2.handled.items() if n > 1]
    figures = {
        "events": len(ids),
        "sent": counts["sent"],
        "retried_deliveries_attempts": counts["retries"],
        "attempts": counts["attempts"],
        "wire_arrivals": len(rx2.arrivals),
        "dead": counts["dead"],
        "lost": len(lost),
        "doubled": len(doubled),
        "bad_signatures": rx2.bad_signatures,
    }
    print("\nwebhook outbox fault test:", json.dumps(figures), file=sys.stderr)
    assert lost == [] and doubled == []
    assert counts["sent"] == 40 and counts["dead"] == 0 and counts["retries"] >= 10
    assert rx2.bad_signatures == 0
    body = rx2.bodies[ids[0]]
    assert body["type"] == "analysis.completed" and body["id"] == ids[0] and body["data"] == {"n": 0, "cm": 2}


async def test_dead_after_max_attempts_is_kept_not_dropped(tmp_path: Path) -> None:
    rx = Receiver(SECRET).start()
    rx.script = ["fail"] * 10
    d = WebhookDispatcher(SqliteOutbox(tmp_path / "o.sqlite"), _config(rx.url, max_attempts=3))
    d.start()
    eid = await d.publish("analysis.completed", {"x": 1})
    t0 = time.monotonic()
    while (await d.outbox.counts())["dead"] == 0 and time.monotonic() - t0 < 20:
        await asyncio.sleep(0.05)
    await d.aclose()
    rx.stop()
    kept = await SqliteOutbox(tmp_path / "o.sqlite").get(f"{eid}-0")
    assert kept is not None and kept.status == "dead" and kept.attempts == 3 and kept.last_error == "HTTP 500"


async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    await outbox.add(
        [Delivery(id="d1", event_id="e1", event_type="x", url="http://127.0.0.1:9/none", body="{}")]
    )
    import httpx

    def reply(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "30"})

    clock = [1000.0]
    d = WebhookDispatcher(
        outbox, _config("http://x", backoff_max_s=900.0),
        client=httpx.AsyncClient(transport=httpx.MockTransport(reply)), clock=lambda: clock[0],
    )  # fmt: skip
    await outbox.mark_retry("d1", 0.0, "")
    assert await d.run_once() == 1
    got = await outbox.get("d1")
    assert got is not None and got.next_at >= 1030.0 and got.last_error == "HTTP 429"


@pytest.mark.slow
async def test_redis_outbox_delivers_once(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    proc = request.getfixturevalue("redis_proc")
    from mugpos.stores.outbox import RedisOutbox

    url = f"redis://{proc.host}:{proc.port}/3"
    rx = Receiver(SECRET).start()
    rx.script = ["fail", "fail", "stall"]
    rx.stall_s = 1.0
    senders = [
        WebhookDispatcher(RedisOutbox(url, prefix=f"t{os.getpid()}:"), _config(rx.url)) for _ in range(2)
    ]
    for s in senders:
        s.start()
    ids = [await senders[i % 2].publish("analysis.completed", {"i": i}) for i in range(12)]
    t0 = time.monotonic()
    while (await senders[0].outbox.counts())["pending"] and time.monotonic() - t0 < 30:
        await asyncio.sleep(0.05)
    counts = await senders[0].outbox.counts()
    for s in senders:
        await s.aclose()
    rx.stop()
    assert counts["sent"] == 12 and counts["retries"] >= 3
    assert all(rx.handled[i] == 1 for i in ids)


@pytest.mark.slow
async def test_the_served_app_sends_events_of_an_a2a_analysis(agent_settings, coffee_png: Path) -> None:
    """`mugpos serve`'s own app: the webhook door's lifespan registers the outbox on the operations'
    event sinks, so an analysis made through another door (A2A here) reaches the receiver, signed."""
    from a2a.helpers.proto_helpers import new_raw_part, new_text_part
    from a2a.types import Message, Role, SendMessageRequest
    from agent_helpers import a2a_client, serve_app

    rx = Receiver(SECRET).start()
    settings = agent_settings(webhook_urls=[rx.url], webhook_secret=SECRET)
    async with serve_app(settings) as (url, app):
        assert len(app.event_sinks) == 1
        client = await a2a_client(url, None, streaming=False)
        parts = [new_raw_part(coffee_png.read_bytes(), media_type="image/png", filename="coffee.png"),
                 new_text_part("keep mugs in the left half of the image")]  # fmt: skip
        request = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id="m-1", parts=parts))
        _ = [ev async for ev in client.send_message(request)]
        t0 = time.monotonic()
        while len(rx.handled) < 2 and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.05)
    assert app.event_sinks == []  # unregistered when the server stopped
    rx.stop()
    types = sorted(b["type"] for b in rx.bodies.values())
    assert types == ["analysis.completed", "rule.violated"]
    violated = next(b for b in rx.bodies.values() if b["type"] == "rule.violated")
    assert violated["data"]["rule"]["text"] == "keep mugs in the left half of the image"
    assert violated["data"]["analysis_id"].startswith("a-")


@pytest.mark.slow
async def test_stdio_sessions_send_events_too(
    app_env: dict[str, str], coffee_png: Path, tmp_path: Path
) -> None:
    """`mugpos serve` over stdio (Claude Desktop's way) runs the webhook sender beside the MCP session."""
    from mcp import Client, StdioServerParameters

    rx = Receiver(SECRET).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUGPOS_")} | app_env
    env |= {
        "MUGPOS_WEBHOOK_URLS": rx.url,
        "MUGPOS_WEBHOOK_SECRET": SECRET,
        "MUGPOS_WEBHOOK_EVENTS": "rule.violated",
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "mugpos", "serve"], env=env)
    async with Client(params) as client:
        result = await client.call_tool(
            "analyze_image", {"image": str(coffee_png), "rules": ["keep mugs in the left half of the image"]}
        )
        assert not result.is_error
        t0 = time.monotonic()
        while not rx.handled and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.1)
    rx.stop()
    assert [b["type"] for b in rx.bodies.values()] == ["rule.violated"]
    outbox = SqliteOutbox(Path(app_env["MUGPOS_DATA_DIR"]) / "webhooks" / "outbox.sqlite")
    assert (await outbox.counts())["sent"] == 1


async def test_sent_deliveries_are_pruned_dead_ones_kept(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    await outbox.add(
        [Delivery(id=f"d{i}", event_id=f"e{i}", event_type="x", url="http://x", body="{}") for i in range(3)]
    )
    await outbox.mark_sent("d0", 100.0)
    await outbox.mark_sent("d1", 900.0)
    await outbox.mark_dead("d2", "HTTP 500")
    assert await outbox.prune(500.0) == 1
    assert (
        await outbox.get("d0") is None
        and await outbox.get("d1") is not None
        and await outbox.get("d2") is not None
    )
