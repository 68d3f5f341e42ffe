"""The RunPod serverless worker: the second door to the same tools as the MCP server.

A job is `{"input": {"tool": "analyze_image", "arguments": {...}, "return_image": true}}`; the handler
runs `mugpos.operations.call_tool` (the code behind every MCP tool) and returns

    {"tool": NAME, "result": <the MCP tool's structured content>, "image": {"mime", "base64"} | null}

A caller's mistake comes back as RunPod's job error: a JSON string `{"code", "message", "hint"}`.
Progress goes out through `runpod.serverless.progress_update` (visible in `/status` while the job
runs). The handler is a plain coroutine rather than an async generator: the SDK's `--test_input` mode
(1.9.1) does not iterate generators, and an aggregated stream would turn the result into a list.

One `Mugpos` app per worker process; its models start loading before the runpod SDK is even
imported, so the two overlap. Cold-start stages go to stderr as `mugpos-worker cold start ...`.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before anything heavy: the module's own import starts here

import base64  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

if TYPE_CHECKING:
    from mugpos.operations import Mugpos, Outcome

log = logging.getLogger("mugpos.worker")

INPUT_KEYS = {"tool", "arguments", "return_image"}


def _process_age() -> float | None:
    """Seconds since this process was created (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class ColdStart:
    """Stage marks relative to process creation, logged once each and summarised at the first answer."""

    def __init__(self) -> None:
        age = _process_age()
        self._origin = _T0 - (age if age is not None else 0.0)
        self.stages: dict[str, float] = {}
        self.details: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.done = False
        self.verbose = False  # quiet when imported as a library; main() turns it on
        self.mark("python start", at=_T0)

    def enable(self) -> None:
        self.verbose = True
        for stage, t in list(self.stages.items()):
            self._say(stage, t)

    def _say(self, stage: str, t: float) -> None:
        print(f"mugpos-worker cold start: {stage} at +{t:.3f}s", file=sys.stderr, flush=True)

    def mark(self, stage: str, at: float | None = None) -> None:
        with self._lock:
            if stage in self.stages:
                return
            t = round((at if at is not None else time.perf_counter()) - self._origin, 3)
            self.stages[stage] = t
        if self.verbose:
            self._say(stage, t)

    def summary(self) -> dict[str, Any]:
        return {"stages_s": dict(self.stages), **self.details}


COLD = ColdStart()

from mugpos.errors import MugposError  # noqa: E402
from mugpos.settings import get_settings  # noqa: E402

_app: Mugpos | None = None
_app_lock = threading.Lock()
# In the SDK's --test_input mode the SDK logs the result cut to 4 KB; the worker then also prints
# the whole output as one JSON line on stdout ("mugpos-worker result: {...}") for the developer.
_print_results = False


def get_app() -> Mugpos:
    """The worker's one app; creating it starts the background model load."""
    global _app
    with _app_lock:
        if _app is None:
            from mugpos.operations import Mugpos

            COLD.mark("mugpos imported")
            _app = Mugpos(get_settings())
            _app.start()
            COLD.mark("model load started")
            threading.Thread(
                target=_watch_models, args=(_app,), name="mugpos-cold-start", daemon=True
            ).start()
        return _app


_webhooks_tried = False


def _start_webhooks(app: Mugpos) -> None:
    """On the first job, in the worker's event loop: the webhook sender, when URLs are configured.

    Events go to the durable outbox before the job answers; the sender delivers them between and
    after jobs in this loop. A worker stopped with deliveries still due leaves them in its outbox
    (`MUGPOS_DATA_DIR`): on a network volume the next worker sends them.
    """
    global _webhooks_tried
    if _webhooks_tried:
        return
    from mugpos.webhooks import attach_webhooks

    dispatcher = attach_webhooks(app)  # a bad webhook setting fails every job, as it stops a server
    _webhooks_tried = True
    if dispatcher is not None:
        dispatcher.start()


def _watch_models(app: Mugpos) -> None:
    """Mark when the models are ready (or failed), with the engine's own per-model seconds."""
    while True:
        st = app.engine.status()
        if st.get("stage") in ("ready", "failed"):
            COLD.details["model_load_s"] = st.get("load_seconds")
            COLD.mark("models ready" if st.get("stage") == "ready" else "models failed")
            return
        time.sleep(0.02)


def _on_runpod() -> bool:
    return bool(os.environ.get("RUNPOD_WEBHOOK_POST_OUTPUT"))


def _bad_input(message: str) -> MugposError:
    return MugposError(
        message,
        code="bad_input",
        hint='send {"input": {"tool": "analyze_image", "arguments": {"image": "https://..."}}}',
    )


def parse_job_input(job: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """The tool name, its arguments and whether to return the picture; MugposError when malformed."""
    inp = job.get("input")
    if not isinstance(inp, dict):
        raise _bad_input("the job's input must be an object")
    extra = set(inp) - INPUT_KEYS
    if extra:
        raise _bad_input(f"unknown input keys: {', '.join(sorted(extra))}")
    tool = inp.get("tool")
    if not isinstance(tool, str) or not tool:
        raise _bad_input("input.tool must name a tool")
    arguments = inp.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise _bad_input("input.arguments must be an object")
    return_image = inp.get("return_image", True)
    if not isinstance(return_image, bool):
        raise _bad_input("input.return_image must be true or false")
    return tool, arguments, return_image


def render_output(tool: str, outcome: Outcome, return_image: bool) -> dict[str, Any]:
    """The job output: the same structured content the MCP tool returns, and its picture."""
    image = None
    if return_image and outcome.picture is not None:
        image = {
            "mime": outcome.picture.mime,
            "base64": base64.b64encode(outcome.picture.data).decode("ascii"),
        }
    return {"tool": tool, "result": outcome.result.model_dump(mode="json"), "image": image}


def error_output(exc: MugposError) -> dict[str, Any]:
    return {"error": json.dumps(exc.to_dict()["error"], ensure_ascii=False)}


async def handler(job: dict[str, Any]) -> dict[str, Any]:
    """Run one tool call for RunPod; every failure becomes a clean job error, never a traceback."""
    try:
        from mugpos.operations import call_tool

        tool, arguments, return_image = parse_job_input(job)
        app = get_app()
        _start_webhooks(app)

        async def progress(fraction: float, message: str) -> None:
            if _on_runpod():
                from runpod.serverless import progress_update

                progress_update(job, {"progress": round(fraction, 3), "message": message})
            else:
                log.debug("job %s: %.0f%% %s", job.get("id"), fraction * 100, message)

        outcome = await call_tool(app, tool, arguments, progress)
        output = render_output(tool, outcome, return_image)
    except MugposError as exc:
        return error_output(exc)
    except Exception as exc:  # a bug: report it plainly, keep the traceback in the worker's log
        log.exception("job %s failed", job.get("id"))
        return error_output(
            MugposError(
                f"internal error: {type(exc).__name__}", code="internal_error", hint="see the worker's log"
            )
        )
    if _print_results:
        print(f"mugpos-worker result: {json.dumps(output)}", flush=True)
    if not COLD.done:
        COLD.done = True
        COLD.mark("first answer")
        COLD.details["cpu_s"] = round(time.process_time(), 3)  # CPU seconds to get here, all threads
        if COLD.verbose:
            print(
                f"mugpos-worker cold start summary: {json.dumps(COLD.summary())}", file=sys.stderr, flush=True
            )
    return output


def concurrency_modifier(current: int) -> int:
    """Jobs this worker takes at once: enough concurrent calls to fill the engine's batches."""
    return get_settings().worker_concurrency


def _quick_cpuinfo() -> None:
    """runpod 1.9 calls `cpuinfo.get_cpu_info()` at import, only to name the processor in its debug
    output; py-cpuinfo answers by starting a child process (~1.4 s of a cold start here). Answer it
    from /proc/cpuinfo instead (runpod has no switch for it)."""
    try:
        import cpuinfo
    except ImportError:
        return
    brand = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        brand = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), brand)
    cpuinfo.get_cpu_info = lambda: {"brand_raw": brand}


def _lazy_paramiko() -> None:
    """runpod 1.9 imports its SSH command-line helpers, and with them paramiko (~0.2-0.4 s of a
    cold start here), whenever the serverless worker is imported; a worker never opens an SSH
    session. Register paramiko to load on first use instead (the standard library's LazyLoader):
    nothing changes for code that does use it."""
    import importlib.util

    if "paramiko" in sys.modules:
        return
    spec = importlib.util.find_spec("paramiko")
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["paramiko"] = module
    loader.exec_module(module)


def main() -> None:
    """`python -m mugpos.deploy.runpod_worker` (the serverless image's start command)."""
    global _print_results
    COLD.enable()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # libraries: warnings only
    logging.getLogger("mugpos").setLevel(os.environ.get("MUGPOS_LOG_LEVEL", "INFO").upper())
    _print_results = any(a == "--test_input" or a.startswith("--test_input=") for a in sys.argv[1:])
    try:
        get_app()
    except MugposError as exc:
        print(exc.one_line(), file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    _quick_cpuinfo()
    _lazy_paramiko()
    import runpod

    COLD.mark("runpod imported")
    runpod.serverless.start(
        {
            "handler": handler,
            "concurrency_modifier": concurrency_modifier,
            "return_aggregate_stream": True,
        }
    )


if __name__ == "__main__":
    main()
