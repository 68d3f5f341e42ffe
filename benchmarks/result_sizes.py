"""How heavy tool results are for an assistant: bytes and estimated tokens, through the SDK's MCP client.

    python benchmarks/result_sizes.py [IMAGE] [--weights W] [--json]

IMAGE defaults to the COCO photo with the most labelled objects in $MUGPOS_TEST_DATA/coco-cups.
Ten rules are saved first, then analyze_image, suggest_position and list_rules are called (the
default compact view, and detail="full" where the tool has it). Tokens: Anthropic's published
tokenizer (npm `@anthropic-ai/tokenizer`, an estimate for current Claude models) when
$MUGPOS_NPM_TOKENIZER names its install prefix; otherwise characters / 3.5 (JSON is denser in
tokens than prose), marked "~".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RULES = [
    "Keep mugs at least 6 inches away from laptops",
    "Keep mugs at least 10 cm from the table edge",
    "Keep mugs at least 5 cm apart",
    "Keep drinks and electronics separated by at least 20cm",
    "Keep cups on the left-hand side of the desk",
    "Keep mugs in the front half of the workspace",
    "Cluster mugs within 12 inches of each other for easy access",
    "Keep mugs within 30 cm of the keyboard",
    "Maintain a minimum distance of 8 inches between beverages and keyboards",
    "Ensure drinks are no closer than 4 inches to the edge of the table",
]


def busiest_photo(data: Path) -> Path:
    labels = sorted(
        (data / "coco-cups" / "labels").glob("*.txt"), key=lambda p: -len(p.read_text().splitlines())
    )
    return data / "coco-cups" / "images" / (labels[0].stem + ".jpg")


def count_tokens(texts: list[str]) -> tuple[list[int], str]:
    prefix = os.environ.get("MUGPOS_NPM_TOKENIZER")
    node = shutil.which("node")
    if prefix and node:
        script = (
            "const {countTokens}=require(process.argv[1]+'/node_modules/@anthropic-ai/tokenizer');"
            "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
            "console.log(JSON.stringify(JSON.parse(s).map(countTokens))));"
        )
        out = subprocess.run(
            [node, "-e", script, prefix], input=json.dumps(texts), capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout), "@anthropic-ai/tokenizer"
    return [round(len(t) / 3.5) for t in texts], "~chars/3.5"


def measure(name: str, result: Any) -> dict[str, Any]:
    structured = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)
    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    images = [c for c in result.content if getattr(c, "type", "") == "image"]
    text = "\n".join(texts)
    return {
        "call": name,
        "structured_bytes": len(structured.encode()),
        "text_bytes": len(text.encode()),
        "image_b64_bytes": sum(len(i.data) for i in images),
        "_structured": structured,
        "_text": text,
    }


async def run(image: Path, weights: str, confidence: float) -> list[dict[str, Any]]:
    from mcp import Client

    from mugpos.mcp_server import build_server
    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="mugpos-sizes-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        detector_weights=weights,
        embedder="none",
        data_dir=tmp,
        allowed_dirs=[image.parent, tmp],
        rules_llm=None,
        confidence=confidence,
    )
    app = Mugpos(settings)
    rows = []
    try:
        async with Client(build_server(app)) as client:
            for text in RULES:
                added = await client.call_tool("add_rule", {"text": text})
                assert not added.is_error, added.content
            calls: list[tuple[str, str, dict[str, Any]]] = [
                ("analyze_image", "analyze_image", {"image": str(image)})
            ]
            tools = {t.name: t for t in (await client.list_tools()).tools}
            has_detail = "detail" in tools["analyze_image"].input_schema.get("properties", {})
            if has_detail:
                calls.append(("analyze_image full", "analyze_image", {"image": str(image), "detail": "full"}))
            for label, tool, args in calls:
                res = await client.call_tool(tool, args)
                assert not res.is_error, res.content
                rows.append(measure(label, res))
            aid = rows[0]["_structured"] and json.loads(rows[0]["_structured"])["analysis_id"]
            more = [("suggest_position", "suggest_position", {"analysis_id": aid})]
            if has_detail:
                more.append(
                    ("suggest_position full", "suggest_position", {"analysis_id": aid, "detail": "full"})
                )
            more.append(("list_rules", "list_rules", {}))
            if "detail" in tools["list_rules"].input_schema.get("properties", {}):
                more.append(("list_rules full", "list_rules", {"detail": "full"}))
            for label, tool, args in more:
                res = await client.call_tool(tool, args)
                assert not res.is_error, res.content
                rows.append(measure(label, res))
    finally:
        await app.aclose()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> int:
    data = Path(os.environ.get("MUGPOS_TEST_DATA", "../shared/data"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", nargs="?", type=Path, default=None)
    p.add_argument("--weights", default=str(data / "models" / "yolov8n_int8.onnx"))
    p.add_argument(
        "--confidence",
        type=float,
        default=0.1,
        help="detector threshold; the small int8 test model finds 33 objects on the busiest photo at 0.1",
    )
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    image = (a.image or busiest_photo(data)).resolve()
    rows = asyncio.run(run(image, a.weights, a.confidence))
    texts = [t for r in rows for t in (r["_structured"], r["_text"])]
    counts, how = count_tokens(texts)
    for i, r in enumerate(rows):
        r["structured_tokens"], r["text_tokens"] = counts[2 * i], counts[2 * i + 1]
        r["tokens_by"] = how
        del r["_structured"], r["_text"]
    if a.json:
        print(json.dumps({"image": str(image), "rules": len(RULES), "rows": rows}, indent=2))
        return 0
    print(f"{image.name} (confidence {a.confidence}), {len(RULES)} saved rules; tokens by {how}")
    print(f"{'call':<24}{'structured B':>14}{'tokens':>8}{'text B':>9}{'tokens':>8}{'image b64 B':>13}")
    for r in rows:
        print(
            f"{r['call']:<24}{r['structured_bytes']:>14}{r['structured_tokens']:>8}"
            f"{r['text_bytes']:>9}{r['text_tokens']:>8}{r['image_b64_bytes']:>13}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
