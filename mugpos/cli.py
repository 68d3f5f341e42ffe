"""The `mugpos` command: a thin door over `mugpos.operations`.

Only argparse is imported at start-up so `mugpos --help` is instant; each command imports what it
needs. With `--json`, exactly one JSON document goes to stdout; logs and progress go to stderr.
User errors exit 2 with a one-line reason (or a JSON error with `--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mugpos.operations import Mugpos, Outcome

EPILOG = """examples:
  mugpos analyze --example                 # the bundled photo: scene, two rules, a suggested move
  mugpos analyze desk.jpg --annotated desk-annotated.jpg
  mugpos check desk.jpg --rule "Keep mugs at least 6 inches away from laptops"   # exit 1 if violated
  mugpos suggest --scene scene.json --rule "mugs on the right side of the table" --json
  mugpos rules add "CRITICAL: no drinks within 20 cm of the keyboard"
  mugpos serve --transport streamable-http --host 127.0.0.1 --port 8765
exit status: 0 done (for check: no rule violated), 1 check found a violated rule, 2 bad input.
settings: MUGPOS_* environment variables (MUGPOS_DETECTOR_WEIGHTS, MUGPOS_EMBEDDER=none,
MUGPOS_OFFLINE=1, MUGPOS_DEVICE, ...); see the README."""


def _add_common(sp: argparse.ArgumentParser, annotated: bool = False) -> None:
    """The options every analysing command shares."""
    sp.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="TEXT",
        help="a rule in plain language (repeatable)",
    )
    sp.add_argument(
        "--with-saved", action="store_true", help="also check the saved rules when --rule is given"
    )
    sp.add_argument("--px-per-cm", type=float, default=None, help="known scale; estimated when omitted")
    sp.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    if annotated:
        sp.add_argument(
            "--annotated",
            type=Path,
            metavar="OUT",
            help="write the annotated picture (.png, .jpg or .webp)",
        )


def _add_rules_commands(r: argparse.ArgumentParser) -> None:
    """`mugpos rules add|list|remove|enable|disable|explain`."""
    rs = r.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    ra = rs.add_parser("add", help="save a rule")
    ra.add_argument("text")
    ra.add_argument("--severity", choices=["critical", "warning", "info"])
    rs.add_parser("list", help="list saved rules")
    rr = rs.add_parser("remove", help="remove a saved rule")
    rr.add_argument("id")
    for verb in ("enable", "disable"):
        rv = rs.add_parser(verb, help=f"{verb} a saved rule")
        rv.add_argument("id")
    re_ = rs.add_parser("explain", help="show how a rule is understood, without saving it")
    re_.add_argument("text")
    for sp in rs.choices.values():
        sp.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mugpos",
        description="Eyes for mug placement: detect, measure, check rules, suggest moves.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("analyze", help="detect mugs and objects, measure the scene, check rules")
    a.add_argument("image", nargs="?", help="any image file you can read, an http(s) URL, data URI or base64")
    a.add_argument(
        "--example",
        action="store_true",
        help="analyse the bundled example photo (CC0) with two example rules and suggest a move",
    )
    _add_common(a, annotated=True)
    a.add_argument("--no-store", action="store_true", help="do not keep the analysis (nor its pictures)")

    for name, helptext in (
        ("check", "check rules against a photo or a scene JSON"),
        ("suggest", "say where each mug should go to satisfy the rules"),
    ):
        c = sub.add_parser(name, help=helptext)
        src = c.add_mutually_exclusive_group(required=True)
        src.add_argument("image", nargs="?", help="a photo: any file you can read, a URL, data URI or base64")
        src.add_argument(
            "--scene", type=Path, metavar="SCENE.json", help="a Scene JSON from your own detector"
        )
        src.add_argument("--analysis", metavar="ID", help="a stored analysis id")
        _add_common(c, annotated=name == "suggest")

    _add_rules_commands(sub.add_parser("rules", help="manage saved rules"))

    s = sub.add_parser("serve", help="run the MCP server")
    s.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)

    st = sub.add_parser("status", help="engine, cache and store status")
    st.add_argument("--warm", action="store_true", help="load the models first")
    st.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="measure latency, throughput, cache and cold start")
    from mugpos.bench import add_bench_arguments

    add_bench_arguments(b)

    e = sub.add_parser("export", help="export detector weights to ONNX or TensorRT")
    e.add_argument("--format", choices=["onnx", "engine"], required=True)
    e.add_argument("--weights", default=None, help="default: MUGPOS_DETECTOR_WEIGHTS")
    e.add_argument("--imgsz", type=int, default=None)
    e.add_argument("--half", action="store_true")
    e.add_argument("--dynamic", action="store_true")
    e.add_argument("--batch", type=int, default=1)

    from mugpos.deploy.runpod_api import add_deploy_arguments

    add_deploy_arguments(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from mugpos import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 0
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if args.verbose else "mugpos: %(message)s",
    )
    if not args.verbose:
        # Each is said once by the CLI itself: CLIP being off in the result's warnings (with the
        # setting that turns it off), a failed model load as the command's error line.
        logging.getLogger("mugpos.engine").addFilter(
            lambda r: not str(r.msg).startswith(("image embedding off", "model loading failed"))
        )
    os.environ.setdefault("YOLO_VERBOSE", "False")
    as_json = bool(getattr(args, "json", False))
    from mugpos.errors import MugposError

    try:
        return _dispatch(args)
    except MugposError as exc:
        _print_error(
            _cli_error(exc),
            exc.one_line("cli") if exc.code != "rule_not_understood" else _rule_line(exc),
            as_json,
        )
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line, details only with -v
        logging.getLogger("mugpos").debug("internal error", exc_info=True)
        err = {
            "error": {
                "code": "internal_error",
                "message": f"{type(exc).__name__}: {exc}",
                "hint": "rerun with -vv and report it",
            }
        }
        _print_error(err, f"internal error: {type(exc).__name__}: {exc}", as_json)
        return 1


def _cli_error(exc: Any) -> dict[str, Any]:
    """The error document in the CLI's words (a refused rule: the phrasings, not the JSON schema)."""
    doc: dict[str, Any] = exc.to_dict("cli")
    if exc.code == "rule_not_understood":
        doc["error"]["hint"] = RULE_HINT
        doc["error"].get("details", {}).pop("schema", None)
    return doc


RULE_HINT = 'rephrase it like one of the suggestions; `mugpos rules explain "TEXT"` shows how a rule is read'


def _rule_line(exc: Any) -> str:
    near = list(exc.details.get("suggestions") or [])[:3]
    tries = f" Try: {' | '.join(near)}." if near else ""
    return f"error ({exc.code}): {exc.message}{tries} Hint: {RULE_HINT}"


def _print_error(doc: dict[str, Any], line: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(doc))
    else:
        print(line, file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "serve":
        from mugpos.mcp_server.transports import serve
        from mugpos.operations import Mugpos

        serve(Mugpos(), transport=args.transport, host=args.host, port=args.port)
        return 0
    if cmd == "bench":
        from mugpos.bench import print_table, run_bench

        result = run_bench(args)
        if getattr(args, "json", False):
            print(json.dumps(result, default=str))
        else:
            print_table(result)
        return 0
    if cmd == "export":
        from mugpos.engine.export import export_detector
        from mugpos.settings import get_settings

        s = get_settings()
        out = export_detector(
            args.weights or s.detector_weights,
            args.format,
            imgsz=args.imgsz or s.detector_imgsz,
            half=args.half,
            dynamic=args.dynamic,
            batch=args.batch,
            device=s.device,
        )
        print(out)
        return 0
    if cmd == "deploy":
        from mugpos.deploy.runpod_api import run_deploy

        return run_deploy(args)
    return asyncio.run(_run_async(args))


async def _run_async(args: argparse.Namespace) -> int:
    from mugpos.operations import Mugpos
    from mugpos.settings import get_settings

    settings = get_settings()
    out = getattr(args, "annotated", None)
    if out is not None:
        ext = out.suffix.lower().lstrip(".")
        settings.annotated_format = {"jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}.get(ext, "png")  # type: ignore[assignment]
        settings.annotated_max_side = max(settings.annotated_max_side, 4096)
    app = Mugpos(settings, any_path=True)  # the user names their own files: no folder sandbox here
    try:
        return await _command(app, args)
    finally:
        await app.aclose()


async def _command(app: Mugpos, args: argparse.Namespace) -> int:
    cmd = args.command
    progress = _stderr_progress if not getattr(args, "json", False) and sys.stderr.isatty() else None
    if cmd == "analyze" and args.example:
        return await _example(app, args, progress)
    if cmd == "analyze":
        if not args.image:
            from mugpos.errors import ImageError

            raise ImageError(
                "no image given",
                hint="`mugpos analyze PHOTO.jpg`, or `mugpos analyze --example` for the bundled photo",
            )
        rules = args.rule or None
        outcome = await app.analyze(
            args.image,
            rules,
            px_per_cm=args.px_per_cm,
            use_saved_rules=not rules or args.with_saved,
            store=not args.no_store,
            annotate=args.annotated is not None or not args.no_store,
            progress=progress,
        )
        return _emit(outcome, args, _human_analysis)
    if cmd in ("check", "suggest"):
        scene = _read_scene(args.scene) if args.scene else None
        if scene is not None and args.px_per_cm is not None:
            scene["px_per_cm"] = args.px_per_cm
        rules = args.rule or None
        kw: dict[str, Any] = {
            "image": args.image,
            "analysis_id": args.analysis,
            "scene": scene,
            "rules": rules,
            "use_saved_rules": not rules or args.with_saved,
            "progress": progress,
        }
        if cmd == "check":
            from mugpos.operations import Outcome

            checked = await app.check(**kw)
            _emit(Outcome(checked), args, _human_check)
            return 1 if any(v.status == "violated" for v in checked.rules) else 0
        outcome = await app.suggest(**kw, annotate=args.annotated is not None)
        return _emit(outcome, args, _human_suggest)
    if cmd == "rules":
        return await _rules_command(app, args)
    if cmd == "status":
        if args.warm:
            await app.engine.wait_ready()
        from mugpos.operations import Outcome

        return _emit(Outcome(await app.status(probe=True)), args, _human_status)
    raise AssertionError(cmd)


EXAMPLE_RULES = (
    "Keep mugs in the left half of the image",
    "Keep mugs at least 6 inches away from laptops",
)


async def _example(app: Mugpos, args: argparse.Namespace, progress: Any) -> int:
    """The README's first command: the bundled CC0 photo, two example rules, a suggested move and
    the pictures, with no file of the user's; nothing is stored."""
    from importlib.resources import as_file, files

    rules = list(args.rule or EXAMPLE_RULES)
    out: Path = args.annotated or Path("mugpos-example.jpg")
    moves_out = out.with_name(f"{out.stem}-moves{out.suffix}")
    with as_file(files("mugpos.examples") / "coffee.png") as photo:
        analysed = await app.analyze(str(photo), rules, use_saved_rules=False, store=False, progress=progress)
        suggested = await app.suggest(image=str(photo), rules=rules, use_saved_rules=False)
    for picture, path in ((analysed.picture, out), (suggested.picture, moves_out)):
        if picture is not None:
            path.write_bytes(picture.data)
    if args.json:
        doc = {
            "analysis": analysed.result.model_dump(mode="json"),
            "suggestion": suggested.result.model_dump(mode="json"),
            "pictures": [str(out), str(moves_out)],
        }
        print(json.dumps(doc))
        return 0
    print(f"example photo: coffee.png (CC0, Rachel Michetti; ships with mugpos); rules: {len(rules)}")
    print(_human_analysis(analysed.result))
    print("where to move:")
    print(_human_suggest(suggested.result))
    print(f"annotated picture: {out}\npicture with the move: {moves_out}")
    return 0


async def _rules_command(app: Mugpos, args: argparse.Namespace) -> int:
    from mugpos.operations import Outcome

    rc = args.rules_command
    if rc == "add":
        res: Any = await app.add_rule(args.text, severity=args.severity)
        return _emit(
            Outcome(res),
            args,
            lambda r: (
                f"added {r.id}: {r.interpretation}" + ("" if r.checkable else f" (not checkable: {r.reason})")
            ),
        )
    if rc == "list":
        res = await app.list_rules()
        return _emit(
            Outcome(res),
            args,
            lambda r: (
                "\n".join(
                    f"{x.id}  [{x.severity}{'' if x.enabled else ', disabled'}]  {x.text}\n      -> {x.interpretation}"
                    for x in r.rules
                )
                or "no saved rules"
            ),
        )
    if rc == "remove":
        return _emit(Outcome(await app.remove_rule(args.id)), args, lambda r: f"removed {r.id}")
    if rc in ("enable", "disable"):
        res = await app.set_rule_enabled(args.id, rc == "enable")
        return _emit(Outcome(res), args, lambda r: f"{rc}d {r.id}")
    res = await app.explain_rule(args.text)
    return _emit(Outcome(res), args, _human_explain)


def _emit(outcome: Outcome, args: argparse.Namespace, human: Any) -> int:
    out = getattr(args, "annotated", None)
    if out is not None and outcome.picture is not None:
        out.write_bytes(outcome.picture.data)
    if getattr(args, "json", False):
        print(outcome.result.model_dump_json())
    else:
        print(human(outcome.result))
        if out is not None:
            print(f"annotated picture: {out}")
    return 0


def _read_scene(path: Path) -> dict[str, Any]:
    from mugpos.errors import SceneError

    try:
        if path.stat().st_size > 5 * 1024 * 1024:
            raise SceneError(f"{path} is larger than 5 MB; a scene is a few kB of JSON")
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SceneError(f"no such scene file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SceneError(
            f"{path} is not valid JSON: {str(exc).splitlines()[0]}", hint="see the Scene JSON in the README"
        ) from None


async def _stderr_progress(fraction: float, message: str) -> None:
    print(
        f"\r[{fraction * 100:3.0f}%] {message:<40}",
        end="" if fraction < 1 else "\n",
        file=sys.stderr,
        flush=True,
    )


def _human_analysis(r: Any) -> str:
    lines = [r.summary]
    for m in r.mugs:
        e = m.edges_cm
        adv = ""
        obj = r.scene.get(m.object_id)
        if obj is not None and obj.advisory is not None:
            adv = f", looks like a {obj.advisory.label} ({obj.advisory.score:.0%})"
        edges = " ".join(
            f"{side} {'?' if cm is None else f'{cm:.0f}'}"
            for side, cm in (("L", e.left), ("R", e.right), ("back", e.back), ("front", e.front))
        )
        lines.append(
            f"  {m.object_id}: box {[round(v) for v in m.box]}, zone {m.zone}, edges {edges} cm"
            f"{' on ' + m.surface_id if m.surface_id else ''}{adv}"
        )
    for rel in r.relations[:8]:
        gap = f"{rel.gap_cm:.1f} cm" if rel.gap_cm is not None else f"{rel.gap_px:.0f} px (not on the table)"
        lines.append(f"  {rel.subject_id} -> {rel.object_id}: {gap} {' '.join(rel.directions)}")
    lines.extend(_verdict_lines(r.rules))
    t = r.timings
    work = (
        t.load_ms
        + t.decode_ms
        + t.detect_ms
        + t.embed_ms
        + t.geometry_ms
        + t.rules_ms
        + t.annotate_ms
        + t.store_ms
    )
    waited = t.total_ms - work
    lines.append(
        f"timings: decode {t.decode_ms:.0f} ms, detect {t.detect_ms:.0f} ms, embed {t.embed_ms:.0f} ms, "
        f"geometry {t.geometry_ms:.1f} ms, total {t.total_ms:.0f} ms"
        + (f" (of which loading models {waited:.0f} ms)" if waited > 200 and not t.cache else "")
        + (f" (cache {t.cache})" if t.cache else "")
    )
    lines.extend(f"warning: {w}" for w in r.warnings)
    if r.resources:
        lines.append(f"stored as {r.analysis_id}: `mugpos suggest --analysis {r.analysis_id}` reuses it")
    return "\n".join(lines)


def _verdict_lines(verdicts: list[Any]) -> list[str]:
    lines = []
    for v in verdicts:
        mark = {
            "satisfied": "ok",
            "violated": "VIOLATED",
            "uncertain": "uncertain",
            "not_applicable": "n/a",
            "not_checkable": "not checkable",
        }.get(v.status, v.status)
        lines.append(f"[{mark}] {v.text}  ({v.interpretation})" + (f": {v.reason}" if v.reason else ""))
        lines.extend(f"    - {x.message}" for x in v.violations)
    return lines


def _human_check(r: Any) -> str:
    return "\n".join(_verdict_lines(r.rules)) or "no rules to check"


def _human_suggest(r: Any) -> str:
    if not r.suggestions and not r.conflicts:
        return r.summary  # nothing to move: the summary says why
    n, c = len(r.suggestions), len(r.conflicts)
    lines = [
        f"{n} move{'s' if n != 1 else ''}" + (f", {c} conflict{'s' if c != 1 else ''}" if c else "") + ":"
    ]
    for s in r.suggestions:
        lines.append(
            f"  {s.object_id}: {s.instruction}"
            + (f" (still violated: {'; '.join(s.still_violated)})" if s.still_violated else "")
            + (f" (the photo cannot confirm: {'; '.join(s.unconfirmed)})" if s.unconfirmed else "")
        )
    lines.extend(f"  conflict: {c.message}" for c in r.conflicts)
    return "\n".join(lines)


def _human_status(r: Any) -> str:
    models = r.models
    det, emb = models.get("detector") or {}, models.get("embedder") or {}
    lines = [
        f"mugpos {r.version}: models {models.get('stage')}" + (f", device {r.device}" if r.device else ""),
        f"  detector: {det.get('weights')} ({det.get('available', 'warm' if det.get('warm') else 'not loaded')})",
        f"  embedder: {emb.get('model')} ({emb.get('available') or emb.get('note')})",
    ]
    for name, st in r.stores.items():
        where = (st.get("details") or {}).get("path") or (st.get("details") or {}).get("root")
        state = st.get("backend") or ("not opened" if st.get("opened") is False else "?")
        lines.append(f"  {name} store: {state}" + (f" at {where}" if where else ""))
    lines.extend(f"off: {d}" for d in r.off)
    lines.extend(f"degraded: {d}" for d in r.degraded)
    lines.append("ok: nothing degraded" if not r.degraded else "")
    return "\n".join(x for x in lines if x)


def _human_explain(r: Any) -> str:
    if not r.understood:
        return "not understood. Try: " + " | ".join(r.suggestions[:5])
    return f"{r.interpretation} (via {r.via})" + ("" if r.checkable else f"\nnot checkable: {r.reason}")


if __name__ == "__main__":
    sys.exit(main())
