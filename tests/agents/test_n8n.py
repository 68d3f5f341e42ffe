"""Webhooks end to end against a real n8n (npm n8n@1.123.81 under Node 22, installed by .ci/run):
the workflow in docs/n8n/ (Webhook trigger -> Crypto HMAC-SHA256 -> IF signature valid and fresh ->
Respond) receives the events of a real analysis and suggestion from the durable outbox; a sender
with the wrong secret is refused (401) and parks its delivery as dead after its attempts.

Lean on purpose (CI budget): one n8n process, one import; the workflow is activated by the same SQL
update `n8n update:workflow --active=true` runs (WorkflowRepository.updateActiveState in
@n8n/db 1.123), which saves a second ~20 s boot of the n8n CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import free_port, stop_process

from mugpos.operations import Mugpos
from mugpos.settings import Settings
from mugpos.webhooks import attach_webhooks
from mugpos.webhooks.dispatcher import WebhookConfig, WebhookDispatcher

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "docs" / "n8n" / "mugpos-signed-webhook.json"
WORKFLOW_ID = "mugposSignedHook1"
SECRET = "n8n-test-secret-9f8e7d"


def n8n_bin() -> Path:
    prefix = os.environ.get("MUGPOS_NPM_N8N")
    if not prefix:
        pytest.skip("n8n not installed: .ci/run installs it and sets MUGPOS_NPM_N8N")
    exe = Path(prefix) / "node_modules" / ".bin" / "n8n"
    if not exe.exists():
        pytest.skip(f"n8n not found under MUGPOS_NPM_N8N ({exe})")
    if shutil.which("node") is None:
        pytest.skip("node (22) not on PATH")
    return exe


@pytest.fixture(scope="module")
def n8n(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real n8n on loopback with the signature-checking workflow active; yields its webhook URL."""
    exe = n8n_bin()
    home = tmp_path_factory.mktemp("n8n")
    port = free_port()
    env = os.environ | {
        "N8N_USER_FOLDER": str(home),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_PORT": str(port),
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
        "N8N_RUNNERS_ENABLED": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
        "N8N_HIRING_BANNER_ENABLED": "false",
    }
    wf = home / "workflow.json"
    wf.write_text(WORKFLOW.read_text().replace("MUGPOS_WEBHOOK_SECRET", SECRET))
    subprocess.run([str(exe), "import:workflow", f"--input={wf}"], env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    with sqlite3.connect(home / ".n8n" / "database.sqlite") as db:
        db.execute(
            "UPDATE workflow_entity SET activeVersionId = versionId, active = 1 WHERE id = ?", (WORKFLOW_ID,)
        )
    log = (home / "n8n.log").open("w")
    proc = subprocess.Popen([str(exe), "start"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        while "Activated workflow" not in (home / "n8n.log").read_text():
            if proc.poll() is not None or time.monotonic() - t0 > 240:
                pytest.fail(f"n8n did not start: {(home / 'n8n.log').read_text()[-2000:]}")
            time.sleep(0.5)
        print(f"\nn8n up in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        yield f"http://127.0.0.1:{port}/webhook/mugpos"
    finally:
        stop_process(proc, timeout_s=20)
        log.close()


async def _drained(dispatcher: WebhookDispatcher, timeout_s: float = 120) -> dict[str, int]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        counts = await dispatcher.outbox.counts()
        if counts["pending"] == 0:
            return counts
        await asyncio.sleep(0.1)
    raise AssertionError(f"not delivered: {await dispatcher.outbox.counts()}")


@pytest.mark.slow
@pytest.mark.anyio
async def test_real_analysis_events_reach_n8n_signed_and_a_wrong_secret_is_refused(
    n8n: str, tmp_path: Path, test_data: Path, onnx_weights: Path, coffee_png: Path
) -> None:
    settings = Settings(
        _env_file=None, detector_weights=str(onnx_weights), embedder="none", data_dir=tmp_path / "data",
        allowed_dirs=[test_data], threads=2, webhook_urls=[n8n], webhook_secret=SECRET,
        webhook_backoff_s=0.2, webhook_timeout_s=20,
    )  # fmt: skip
    app = Mugpos(settings)
    dispatcher = attach_webhooks(app)
    assert dispatcher is not None
    dispatcher.start()
    try:
        analysis = (await app.analyze(str(coffee_png), ["keep mugs in the left half of the image"])).result
        await app.suggest(analysis_id=analysis.analysis_id, rules=["keep mugs in the left half of the image"])
        counts = await _drained(dispatcher)
    finally:
        await dispatcher.aclose()
        await app.aclose()
    # analysis.completed, rule.violated, suggestion.made: all accepted by n8n's signature check.
    assert counts["sent"] == 3 and counts["dead"] == 0, counts
    print("n8n deliveries:", json.dumps(counts), file=sys.stderr)

    forger = WebhookDispatcher(
        dispatcher.outbox.__class__(tmp_path / "forged.sqlite"),
        WebhookConfig(urls=[n8n], secret="not-the-secret", max_attempts=1, timeout_s=20),
    )
    event_id = await forger.publish("rule.violated", {"analysis_id": "a-forged"})
    assert await forger.run_once() == 1
    forged = await forger.outbox.get(f"{event_id}-0")
    await forger.aclose()
    assert forged is not None and forged.status == "dead" and forged.last_error == "HTTP 401"
