"""`python -m mugpos.deploy.health [PORT]`: the container's health check.

Healthy when the MCP HTTP server answers on 127.0.0.1 (any status below 500 counts: 401 without a
token still proves the server is up). A serverless worker has no HTTP port; RunPod watches it
through the SDK's heartbeat, so inside one (RUNPOD_WEBHOOK_GET_JOB set) the check passes.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status < 500, f"{url} -> {resp.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"{url} -> {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"{url} unreachable: {exc}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("RUNPOD_WEBHOOK_GET_JOB"):
        print("serverless worker: health is RunPod's heartbeat")
        return 0
    port = int(argv[0]) if argv else int(os.environ.get("MUGPOS_PORT", "8765"))
    ok, line = check(port)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
