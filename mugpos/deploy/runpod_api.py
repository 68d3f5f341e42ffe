"""`mugpos deploy runpod`: create or update the serverless template + endpoint, or the timed pod.

Everything goes through the runpod SDK (GraphQL at `$RUNPOD_API_BASE_URL/graphql`, default
https://api.runpod.io). An endpoint or pod is found by name, so running the command again updates
what it made instead of piling up copies. `--dry-run` prints the GraphQL the SDK would send, built
by the SDK's own mutation generators, and touches no network.

The SDK pastes env values into GraphQL strings unescaped, so values with quotes, backslashes or
newlines are refused here. Secrets belong in `gsm://` references (resolved by mugpos at start) or
RunPod secrets (`{{ RUNPOD_SECRET_name }}`), never in plain template env.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from mugpos.errors import ConfigError, MugposError

WORKER_CMD = "python -m mugpos.deploy.runpod_worker"
MCP_PORT = 8765
SERVERLESS_GPUS = "ADA_80_PRO,HOPPER_141"  # RunPod GPU pools: H100 80 GB, H200 141 GB
POD_GPU = "NVIDIA H100 80GB HBM3"
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY|MONGODB_URI|REDIS_URL", re.I)


@dataclass
class Report:
    """What the command did (or would do), printed as lines or one JSON document."""

    dry_run: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def act(self, kind: str, name: str, verb: str, **info: Any) -> None:
        self.actions.append({"kind": kind, "name": name, "action": verb, **info})


# --- arguments ------------------------------------------------------------------------------


def add_deploy_arguments(subparsers: Any) -> argparse.ArgumentParser:
    """Add `deploy runpod {serverless,pod}` to the `mugpos` command's subparsers."""
    deploy = subparsers.add_parser("deploy", help="deploy mugpos to a GPU cloud")
    targets = deploy.add_subparsers(dest="deploy_target", required=True)
    p = targets.add_parser(
        "runpod",
        help="create or update a RunPod serverless endpoint or a timed pod",
        description="Create or update a RunPod serverless endpoint (template + endpoint) or a timed "
        "pod serving MCP over streamable HTTP. Needs MUGPOS_RUNPOD_API_KEY or RUNPOD_API_KEY "
        "unless --dry-run.",
    )
    p.add_argument("mode", nargs="?", choices=["serverless", "pod"], default="serverless")
    p.add_argument(
        "--image",
        default=os.environ.get("MUGPOS_DEPLOY_IMAGE"),
        help="container image, e.g. ghcr.io/you/mugpos:0.1.0 (default $MUGPOS_DEPLOY_IMAGE)",
    )
    p.add_argument("--name", default="mugpos", help="endpoint or pod name (default mugpos)")
    p.add_argument(
        "--gpu",
        default=None,
        help=f"serverless: GPU pool ids (default {SERVERLESS_GPUS}); pod: GPU type (default {POD_GPU})",
    )
    p.add_argument("--gpu-count", type=int, default=1)
    p.add_argument("--workers-min", type=int, default=0, help="serverless: always-on workers")
    p.add_argument("--workers-max", type=int, default=3, help="serverless: most workers")
    p.add_argument("--idle-timeout", type=int, default=5, help="serverless: seconds a worker lingers")
    p.add_argument("--scaler-type", choices=["QUEUE_DELAY", "REQUEST_COUNT"], default="QUEUE_DELAY")
    p.add_argument("--scaler-value", type=int, default=4)
    p.add_argument("--flashboot", action="store_true", help="serverless: enable FlashBoot")
    p.add_argument("--container-disk-gb", type=int, default=30)
    p.add_argument("--volume-gb", type=int, default=0, help="pod: persistent volume size")
    p.add_argument(
        "--cloud", choices=["ALL", "SECURE", "COMMUNITY"], default="SECURE", help="pod: cloud type"
    )
    p.add_argument(
        "--idle-shutdown-s",
        type=float,
        default=None,
        help="pod: stop after this much idleness (default MUGPOS_IDLE_SHUTDOWN_S, 600)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the container (repeat); use gsm:// references for secrets",
    )
    p.add_argument("--template-id", help="serverless: update this template instead of finding it")
    p.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run_deploy)
    return p


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY.match(key):
            raise ConfigError(f"--env {pair!r} is not KEY=VALUE", hint="--env MUGPOS_AUTH_TOKEN=gsm://...")
        if any(c in value for c in '"\\\n\r'):
            raise ConfigError(
                f"--env {key}: quotes, backslashes and newlines cannot be sent to RunPod safely",
                hint="put such values in Secret Manager and pass a gsm:// reference",
            )
        env[key] = value
    return env


def _secret_warnings(env: dict[str, str]) -> list[str]:
    return [
        f"{k} is sent in plain text: prefer a gsm:// reference or {{{{ RUNPOD_SECRET_name }}}}"
        for k, v in env.items()
        if _SECRETISH.search(k) and v and not v.startswith("gsm://") and "RUNPOD_SECRET_" not in v
    ]


# --- the two deployments -------------------------------------------------------------------


def _with_id(mutation: str, object_id: str) -> str:
    """Turn one of the SDK's create mutations into an update: RunPod's save* upserts by id."""
    return mutation.replace("input: {", f'input: {{\n                id: "{object_id}",', 1)


def _api_url() -> str:
    return os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io") + "/graphql"


def deploy_serverless(args: argparse.Namespace, env: dict[str, str], report: Report) -> None:
    import runpod
    from runpod.api.graphql import run_graphql_query
    from runpod.api.mutations.endpoints import generate_endpoint_mutation
    from runpod.api.mutations.templates import generate_pod_template

    template_kw: dict[str, Any] = {
        "name": f"{args.name}-worker",
        "image_name": args.image,
        "docker_start_cmd": WORKER_CMD,
        "container_disk_in_gb": args.container_disk_gb,
        "env": env,
        "is_serverless": True,
    }
    endpoint_kw: dict[str, Any] = {
        "name": args.name,
        "gpu_ids": args.gpu or SERVERLESS_GPUS,
        "idle_timeout": args.idle_timeout,
        "scaler_type": args.scaler_type,
        "scaler_value": args.scaler_value,
        "workers_min": args.workers_min,
        "workers_max": args.workers_max,
        "flashboot": args.flashboot,
        "gpu_count": args.gpu_count,
    }
    if args.dry_run:
        tpl_query = generate_pod_template(**template_kw)
        if args.template_id:
            tpl_query = _with_id(tpl_query, args.template_id)
        report.requests.append({"url": _api_url(), "query": tpl_query})
        report.requests.append(
            {
                "url": _api_url(),
                "query": generate_endpoint_mutation(
                    template_id=args.template_id or "<new template id>", **endpoint_kw
                ),
            }
        )
        report.act("template", template_kw["name"], "would update" if args.template_id else "would create")
        report.act("endpoint", args.name, "would create or update (found by name)")
        return

    existing = next((e for e in runpod.get_endpoints() or [] if e.get("name") == args.name), None)
    template_id = args.template_id or (existing or {}).get("templateId")
    if template_id:
        saved = run_graphql_query(_with_id(generate_pod_template(**template_kw), template_id))
        template = saved["data"]["saveTemplate"]
        report.act("template", template_kw["name"], "updated", id=template.get("id") or template_id)
    else:
        template = runpod.create_template(**template_kw)
        report.act("template", template_kw["name"], "created", id=template["id"])
    template_id = template.get("id") or template_id
    if existing:
        saved = run_graphql_query(
            _with_id(generate_endpoint_mutation(template_id=template_id, **endpoint_kw), existing["id"])
        )
        endpoint = saved["data"]["saveEndpoint"]
        report.act("endpoint", args.name, "updated", id=existing["id"])
    else:
        endpoint = runpod.create_endpoint(template_id=template_id, **endpoint_kw)
        report.act("endpoint", args.name, "created", id=endpoint["id"])
    endpoint_id = endpoint.get("id") or (existing or {}).get("id")
    report.actions[-1]["runsync_url"] = f"{runpod.endpoint_url_base}/{endpoint_id}/runsync"


def deploy_pod(args: argparse.Namespace, env: dict[str, str], report: Report) -> None:
    import runpod
    from runpod.api.mutations.pods import generate_pod_deployment_mutation

    from mugpos.settings import get_settings

    idle = args.idle_shutdown_s if args.idle_shutdown_s is not None else get_settings().idle_shutdown_s
    env = {"MUGPOS_IDLE_SHUTDOWN_S": f"{idle:g}", **env}
    if "MUGPOS_AUTH_TOKEN" not in env:
        report.warnings.append(
            "no MUGPOS_AUTH_TOKEN in --env: the pod's HTTP server needs a bearer token "
            "(--env MUGPOS_AUTH_TOKEN=gsm://projects/P/secrets/mugpos-token)"
        )
    pod_kw: dict[str, Any] = {
        "name": args.name,
        "image_name": args.image,
        "gpu_type_id": args.gpu or POD_GPU,
        "cloud_type": args.cloud,
        "support_public_ip": True,
        "start_ssh": False,
        "gpu_count": args.gpu_count,
        "volume_in_gb": args.volume_gb,
        "container_disk_in_gb": args.container_disk_gb,
        "ports": f"{MCP_PORT}/http",
        "env": env,
    }
    if args.dry_run:
        report.requests.append({"url": _api_url(), "query": generate_pod_deployment_mutation(**pod_kw)})
        report.act("pod", args.name, "would create (or resume, if a pod of this name is stopped)")
        return
    existing = next((p for p in runpod.get_pods() or [] if p.get("name") == args.name), None)
    if existing is None:
        pod = runpod.create_pod(**pod_kw)
        report.act("pod", args.name, "created", id=pod["id"])
    elif existing.get("desiredStatus") == "EXITED":
        pod = runpod.resume_pod(existing["id"], args.gpu_count)
        report.act("pod", args.name, "resumed", id=existing["id"])
    else:
        pod = existing
        report.act(
            "pod",
            args.name,
            f"already {str(existing.get('desiredStatus', 'present')).lower()}",
            id=existing["id"],
        )
        if existing.get("imageName") and existing["imageName"] != args.image:
            report.warnings.append(
                f"pod {args.name} runs {existing['imageName']}, not {args.image}: terminate it to change the image"
            )
    pod_id = pod.get("id") or (existing or {}).get("id")
    report.actions[-1]["mcp_url"] = f"https://{pod_id}-{MCP_PORT}.proxy.runpod.net/mcp"


# --- entry -----------------------------------------------------------------------------------


def _api_key() -> str | None:
    from mugpos.settings import get_settings

    key = get_settings().runpod_api_key
    return (key.get_secret_value() if key else None) or os.environ.get("RUNPOD_API_KEY")


def run_deploy(args: argparse.Namespace) -> int:
    """Run `mugpos deploy runpod ...`; returns the exit code (2: the caller's mistake, 1: RunPod's)."""
    report = Report(dry_run=bool(args.dry_run))
    try:
        if not args.image:
            raise ConfigError(
                "no image to deploy", hint="--image ghcr.io/you/mugpos:TAG or MUGPOS_DEPLOY_IMAGE"
            )
        if any(c in args.image + args.name for c in '"\\\n '):
            raise ConfigError("image and name may not contain quotes, backslashes or spaces")
        env = parse_env(args.env)
        report.warnings.extend(_secret_warnings(env))
        if not args.dry_run:
            import runpod

            key = _api_key()
            if key:
                runpod.api_key = key
            if not runpod.api_key:
                raise ConfigError(
                    "no RunPod API key", hint="set MUGPOS_RUNPOD_API_KEY (gsm:// works) or RUNPOD_API_KEY"
                )
        (deploy_pod if args.mode == "pod" else deploy_serverless)(args, env, report)
    except MugposError as exc:
        _fail(args, exc.to_dict(), exc.one_line())
        return exc.exit_code
    except Exception as exc:  # the SDK raises its own errors (QueryError, AuthenticationError, HTTP)
        msg = f"RunPod refused or could not be reached: {type(exc).__name__}: {exc}".splitlines()[0][:400]
        err = {
            "error": {
                "code": "runpod_error",
                "message": msg,
                "hint": "check the API key and RUNPOD_API_BASE_URL",
            }
        }
        _fail(args, err, f"error (runpod_error): {msg}")
        return 1
    _print(args, report)
    return 0


def _fail(args: argparse.Namespace, err: dict[str, Any], line: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(err))
    else:
        print(line, file=sys.stderr)


def _print(args: argparse.Namespace, report: Report) -> None:
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps({"dry_run": report.dry_run, "actions": report.actions, "requests": report.requests}))
        return
    for r in report.requests:
        print(f"POST {r['url']}\n{r['query'].strip()}\n")
    for a in report.actions:
        extra = ", ".join(f"{k} {v}" for k, v in a.items() if k not in {"kind", "name", "action"})
        print(f"{a['kind']} {a['name']}: {a['action']}" + (f" ({extra})" if extra else ""))


def main(argv: list[str] | None = None) -> int:
    """`python -m mugpos.deploy.runpod_api runpod ...` until the `mugpos` CLI wires `deploy`."""
    parser = argparse.ArgumentParser(prog="mugpos")
    add_deploy_arguments(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deploy", *(argv if argv is not None else sys.argv[1:])])
    return run_deploy(args)


if __name__ == "__main__":
    raise SystemExit(main())
