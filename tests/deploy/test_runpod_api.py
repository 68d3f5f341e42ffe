"""`mugpos deploy runpod`: dry runs print the SDK's requests; real runs create or update via the SDK."""

from __future__ import annotations

import argparse
import json

import pytest
import runpod

from mugpos.deploy.runpod_api import add_deploy_arguments, run_deploy

IMAGE = "ghcr.io/example/mugpos:0.1.0"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runpod, "api_key", None)
    for var in ("RUNPOD_API_KEY", "MUGPOS_RUNPOD_API_KEY", "MUGPOS_DEPLOY_IMAGE"):
        monkeypatch.delenv(var, raising=False)
    from mugpos.settings import get_settings

    get_settings.cache_clear()


def deploy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="mugpos")
    add_deploy_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deploy", "runpod", *argv])
    code = args.func(args)
    assert args.func is run_deploy
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_prints_the_requests_and_sends_nothing(runpod_api, capsys) -> None:
    code, out, err = deploy(
        [
            "--image",
            IMAGE,
            "--workers-max",
            "5",
            "--env",
            "MUGPOS_REDIS_URL=gsm://projects/p/secrets/redis",
            "--dry-run",
        ],
        capsys,
    )
    assert code == 0
    assert runpod_api.requests == []
    assert f"POST {runpod_api.url}/graphql" in out
    assert "saveTemplate" in out and f'imageName: "{IMAGE}"' in out
    assert 'dockerArgs: "python -m mugpos.deploy.runpod_worker"' in out
    assert "isServerless: true" in out
    assert '{ key: "MUGPOS_REDIS_URL", value: "gsm://projects/p/secrets/redis" }' in out
    assert "saveEndpoint" in out and "workersMax: 5" in out and 'gpuIds: "ADA_80_PRO,HOPPER_141"' in out
    assert "warning" not in err  # a gsm:// reference is not a plain-text secret


def test_dry_run_json_for_a_pod(runpod_api, capsys) -> None:
    code, out, err = deploy(
        [
            "pod",
            "--image",
            IMAGE,
            "--idle-shutdown-s",
            "900",
            "--dry-run",
            "--json",
            "--env",
            "MUGPOS_AUTH_TOKEN=plain-token",
        ],
        capsys,
    )
    assert code == 0 and runpod_api.requests == []
    doc = json.loads(out)
    assert doc["dry_run"] is True
    (req,) = doc["requests"]
    assert "podFindAndDeployOnDemand" in req["query"]
    assert 'ports: "8765/http"' in req["query"]
    assert '{ key: "MUGPOS_IDLE_SHUTDOWN_S", value: "900" }' in req["query"]
    assert "MUGPOS_AUTH_TOKEN is sent in plain text" in err


def test_real_run_creates_template_and_endpoint(runpod_api, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key")
    code, out, err = deploy(["--image", IMAGE, "--name", "mugpos-test", "--workers-min", "1"], capsys)
    assert code == 0, err
    ops = [r["query"] for r in runpod_api.requests]
    assert len(ops) == 3
    assert "endpoints" in ops[0]  # looked for an endpoint of that name first
    assert "saveTemplate" in ops[1] and 'name: "mugpos-test-worker"' in ops[1] and 'id: "' not in ops[1]
    assert "saveEndpoint" in ops[2] and 'templateId: "tpl-new"' in ops[2] and "workersMin: 1" in ops[2]
    assert all(r["authorization"] == "Bearer rp-key" for r in runpod_api.requests)
    assert "template mugpos-test-worker: created (id tpl-new)" in out
    assert "endpoint mugpos-test: created (id ep-new" in out and "/ep-new/runsync" in out


def test_real_run_updates_what_exists(runpod_api, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key")
    runpod_api.endpoints = [{"id": "ep-old", "name": "mugpos", "templateId": "tpl-old"}]
    code, out, err = deploy(["--image", IMAGE, "--json"], capsys)
    assert code == 0, err
    tpl, ep = runpod_api.queries("saveTemplate"), runpod_api.queries("saveEndpoint")
    assert len(tpl) == 1 and 'id: "tpl-old"' in tpl[0]
    assert len(ep) == 1 and 'id: "ep-old"' in ep[0] and 'templateId: "tpl-old"' in ep[0]
    actions = json.loads(out)["actions"]
    assert [(a["kind"], a["action"]) for a in actions] == [("template", "updated"), ("endpoint", "updated")]


def test_real_pod_run_creates_and_prints_the_mcp_url(runpod_api, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key")
    code, out, err = deploy(
        ["pod", "--image", IMAGE, "--env", "MUGPOS_AUTH_TOKEN=gsm://projects/p/secrets/t"], capsys
    )
    assert code == 0, err
    assert len(runpod_api.queries("podFindAndDeployOnDemand")) == 1
    assert "https://pod-new-8765.proxy.runpod.net/mcp" in out


def test_a_stopped_pod_of_that_name_is_resumed(runpod_api, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key")
    runpod_api.pods = [{"id": "pod-old", "name": "mugpos", "desiredStatus": "EXITED", "imageName": IMAGE}]
    code, out, _ = deploy(["pod", "--image", IMAGE, "--env", "MUGPOS_AUTH_TOKEN=gsm://x"], capsys)
    assert code == 0
    assert len(runpod_api.queries("podResume")) == 1 and not runpod_api.queries("podFindAndDeployOnDemand")
    assert "pod mugpos: resumed" in out and "pod-old-8765.proxy.runpod.net" in out


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--dry-run"], 2, "no image"),
        (["--image", IMAGE, "--env", "NOEQUALS", "--dry-run"], 2, "KEY=VALUE"),
        (["--image", IMAGE, "--env", 'A=say "hi"', "--dry-run"], 2, "quotes"),
        (["--image", IMAGE], 2, "no RunPod API key"),
    ],
)
def test_mistakes_are_clear_errors(argv, code, needle, runpod_api, capsys) -> None:
    got, out, _ = deploy([*argv, "--json"], capsys)
    assert got == code
    assert needle in json.loads(out)["error"]["message"]
    assert runpod_api.requests == []


def test_api_errors_become_exit_1(runpod_api, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key")
    runpod_api.fail_with = 401
    code, _, err = deploy(["--image", IMAGE], capsys)
    assert code == 1
    assert "runpod_error" in err and "Traceback" not in err
