"""Report cards: the local Pillow renderer for real (a real analysis drawn and checked pixel by
pixel), and the Templated.io client against a stand-in server that checks each request against
Templated.io's documented API.

The stand-in follows these pages of their documentation (read 2026-12):
- https://templated.io/docs/  (auth: `Authorization: Bearer API_KEY`; base https://api.templated.io)
- https://templated.io/docs/renders/create/  (POST /v1/render: `template` required string, `format`
  one of jpg/png/webp/pdf, `layers` required object keyed by layer name, each a object of layer
  parameters: text, image_url, color, background, font_family, font_size, border_width,
  border_color, fill, stroke, hide, ...; the answer: id, url, width, height, format, templateId, ...)
- https://templated.io/docs/uploads/create  (POST /v1/upload, multipart/form-data: `file` required,
  JPG/PNG/WebP, at most 2 MB; optional `tags` (repeatable) and `externalId`)
The upload's answer is not shown on that page; the stand-in answers `{"id", "url"}` and the client
reads `url` (an assumption, named here and in docs/agents.md).
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mugpos.reports import render_report, report_card
from mugpos.reports.card import (
    LAYER_FOOTER,
    LAYER_MOVE,
    LAYER_PHOTO,
    LAYER_STATUS,
    LAYER_STATUS_TEXT,
    LAYER_SUMMARY,
    LAYER_TITLE,
    LAYER_VERDICTS,
    STATUS_COLOURS,
)  # fmt: skip
from mugpos.settings import Settings

pytestmark = pytest.mark.anyio
KEY = "tpl-key-123"
TEMPLATE = "tmpl-mugpos-card"
TEMPLATE_LAYERS = {LAYER_PHOTO, LAYER_TITLE, LAYER_STATUS, LAYER_STATUS_TEXT, LAYER_VERDICTS, LAYER_MOVE,
                   LAYER_SUMMARY, LAYER_FOOTER}  # fmt: skip
RENDER_KEYS = {"template", "templates", "format", "transparent", "background", "width", "height", "async",
               "webhook_url", "layers", "scale"}  # fmt: skip
LAYER_KEYS = {"text", "image_url", "color", "color_2", "background", "font_family", "font_family_2", "font_size",
              "font_weight", "border_width", "border_color", "fill", "stroke", "hide", "horizontal_align",
              "vertical_align", "autofit", "object_fit"}  # fmt: skip


def verdict(status: str, text: str = "keep mugs at least 15 cm from laptops", **v: Any) -> dict[str, Any]:
    violations = [{"object_id": "cup-1", "message": "x", **v}] if status == "violated" else []
    return {"text": text, "status": status, "violations": violations}


@pytest.mark.parametrize(
    ("statuses", "status", "text"),
    [([], "no rules", "No rules checked"),
     (["not_applicable"], "no rules", "No rule applies here"),
     (["satisfied", "not_applicable"], "ok", "1 rule met; 1 did not apply"),
     (["satisfied", "uncertain"], "uncertain", "1 too close to call"),
     (["satisfied", "violated", "uncertain"], "violated", "1 of 3 rules broken")],
)  # fmt: skip
def test_card_status_reads_the_verdicts(statuses: list[str], status: str, text: str) -> None:
    card = report_card(
        {"analysis_id": "a-1", "mugs": [{}], "rules": [verdict(s) for s in statuses], "summary": "s"}
    )
    assert (card.status, card.status_text) == (status, text)
    assert card.colour == STATUS_COLOURS[status]


def test_verdict_lines_carry_the_measurement() -> None:
    card = report_card({"rules": [verdict("violated", measured_cm=4.26, required_cm=15.24)], "mugs": []})
    assert card.verdicts == ["✗ keep mugs at least 15 cm from laptops (4.3 cm, needs 15)"]


@pytest.fixture
async def real_analysis(
    tmp_path: Path, test_data: Path, onnx_weights: Path, coffee_png: Path
) -> dict[str, Any]:
    from mugpos.operations import Mugpos

    settings = Settings(_env_file=None, detector_weights=str(onnx_weights), embedder="none",
                        data_dir=tmp_path / "data", allowed_dirs=[test_data], threads=2)  # fmt: skip
    app = Mugpos(settings)
    rules = ["keep mugs in the left half of the image", "keep mugs in the front half of the image"]
    try:
        out = await app.analyze(str(coffee_png), rules)
        analysis = out.result.model_dump(mode="json")
        suggestion = (await app.suggest(analysis_id=analysis["analysis_id"], rules=rules)).result
    finally:
        await app.aclose()
    assert out.picture is not None
    return {"analysis": analysis, "suggestion": suggestion.model_dump(mode="json"), "picture": out.picture.data,
            "settings": settings}  # fmt: skip


@pytest.mark.slow
async def test_local_renderer_draws_the_card(real_analysis: dict[str, Any]) -> None:
    r = real_analysis
    report = await render_report(r["settings"], r["analysis"], r["suggestion"], r["picture"])
    assert report.source == "local" and report.mime == "image/png" and report.warnings == []
    img = Image.open(io.BytesIO(report.data)).convert("RGB")
    assert img.size == (1200, 675)
    assert report.card.status == "violated" and len(report.card.verdicts) == 2 and report.card.move
    assert img.getpixel((1150, 100)) == (198, 40, 40)  # the status bar, in the verdict's red
    photo = img.crop((60, 150, 660, 520)).resize((30, 20))
    assert len(set(photo.getdata())) > 100  # the annotated photo is there, not a blank panel
    panel = img.crop((748, 140, 1170, 260)).convert("L")
    assert min(panel.getdata()) < 80  # dark text drawn on the light panel
    if os.environ.get("MUGPOS_ARTIFACTS"):
        out = Path(os.environ["MUGPOS_ARTIFACTS"]) / "report-card-local.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(report.data)


class TemplatedStandIn:
    """A stand-in for api.templated.io (not the real service): a real HTTP server that refuses any
    request their documentation would not accept, and records what it was sent."""

    def __init__(self) -> None:
        self.uploads: list[dict[str, Any]] = []
        self.renders: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.port = 0

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        def refuse(status: int, why: str) -> Response:
            self.problems.append(why)
            return JSONResponse({"error": why}, status_code=status)

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {KEY}"

        async def upload(request: Request) -> Response:
            if not authorised(request):
                return refuse(401, "bad api key")
            if not request.headers.get("content-type", "").startswith("multipart/form-data"):
                return refuse(400, "upload must be multipart/form-data")
            form = await request.form()
            file = form.get("file")
            if file is None or isinstance(file, str):
                return refuse(400, "file is required")
            data = await file.read()
            if (
                file.content_type not in ("image/jpeg", "image/png", "image/webp")
                or len(data) > 2 * 1024 * 1024
            ):
                return refuse(
                    400, f"file must be JPG/PNG/WebP up to 2MB ({file.content_type}, {len(data)} B)"
                )
            Image.open(io.BytesIO(data)).verify()
            unknown = set(form.keys()) - {"file", "tags", "externalId"}
            if unknown:
                return refuse(400, f"unknown upload fields {unknown}")
            self.uploads.append({"bytes": len(data), "type": file.content_type, "tags": form.getlist("tags"),
                                 "externalId": form.get("externalId")})  # fmt: skip
            return JSONResponse({"id": "up-1", "url": f"http://127.0.0.1:{self.port}/assets/up-1.jpg"})

        async def render(request: Request) -> Response:
            if not authorised(request):
                return refuse(401, "bad api key")
            if request.headers.get("content-type") != "application/json":
                return refuse(400, "render body must be application/json")
            body = await request.json()
            if set(body) - RENDER_KEYS:
                return refuse(400, f"unknown render parameters {set(body) - RENDER_KEYS}")
            if not isinstance(body.get("template"), str) or body["template"] != TEMPLATE:
                return refuse(404, "template not found")
            if body.get("format", "jpg") not in ("jpg", "png", "webp", "pdf"):
                return refuse(400, "bad format")
            layers = body.get("layers")
            if not isinstance(layers, dict) or not layers:
                return refuse(400, "layers is required")
            for name, params in layers.items():
                if name not in TEMPLATE_LAYERS:
                    return refuse(400, f"template has no layer {name!r}")
                if not isinstance(params, dict) or set(params) - LAYER_KEYS:
                    return refuse(400, f"bad parameters for layer {name!r}: {params}")
                if "image_url" in params and not str(params["image_url"]).startswith(("http://", "https://")):
                    return refuse(400, "image_url must be a URL")
            self.renders.append(body)
            return JSONResponse({"id": "rnd-1", "url": f"http://127.0.0.1:{self.port}/renders/rnd-1.png",
                                 "width": 1200, "height": 675, "format": "png", "templateId": TEMPLATE,
                                 "templateName": "mugpos card", "createdAt": "2026-12-02 07:00:00"})  # fmt: skip

        async def rendered(_: Request) -> Response:
            buf = io.BytesIO()
            Image.new("RGB", (1200, 675), (10, 20, 30)).save(buf, format="PNG")
            return Response(buf.getvalue(), media_type="image/png")

        return Starlette(routes=[Route("/v1/upload", upload, methods=["POST"]),
                                 Route("/v1/render", render, methods=["POST"]),
                                 Route("/renders/rnd-1.png", rendered, methods=["GET"])])  # fmt: skip


@pytest.fixture
def templated() -> Any:
    import uvicorn
    from testkit import free_port

    stand_in = TemplatedStandIn()
    stand_in.port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(stand_in.app(), host="127.0.0.1", port=stand_in.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    yield stand_in
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
async def test_templated_request_follows_their_documented_api(
    real_analysis: dict[str, Any], templated: Any
) -> None:
    r = real_analysis
    settings = r["settings"].model_copy(update={
        "templated_api_key": __import__("pydantic").SecretStr(KEY), "templated_template_id": TEMPLATE,
        "templated_base_url": f"http://127.0.0.1:{templated.port}"})  # fmt: skip
    report = await render_report(settings, r["analysis"], r["suggestion"], r["picture"])
    assert templated.problems == [] and report.warnings == []
    assert report.source == "templated" and report.url.endswith("/renders/rnd-1.png")
    assert Image.open(io.BytesIO(report.data)).size == (1200, 675)
    assert templated.uploads == [{"bytes": len(r["picture"]), "type": "image/jpeg", "tags": ["mugpos"],
                                  "externalId": r["analysis"]["analysis_id"]}]  # fmt: skip
    sent = templated.renders[0]
    assert sent["template"] == TEMPLATE and sent["format"] == "png"
    layers = sent["layers"]
    assert layers[LAYER_PHOTO] == {"image_url": f"http://127.0.0.1:{templated.port}/assets/up-1.jpg"}
    assert layers[LAYER_STATUS] == {"fill": STATUS_COLOURS["violated"]}
    assert layers[LAYER_STATUS_TEXT]["text"] == "2 of 2 rules broken"
    assert layers[LAYER_VERDICTS]["text"].count("\n") == 1 and layers[LAYER_MOVE]["text"].startswith("Move: ")


@pytest.mark.slow
async def test_templated_refusal_falls_back_to_the_local_card(
    real_analysis: dict[str, Any], templated: Any
) -> None:
    from pydantic import SecretStr

    r = real_analysis
    settings = r["settings"].model_copy(update={
        "templated_api_key": SecretStr("wrong"), "templated_template_id": TEMPLATE,
        "templated_base_url": f"http://127.0.0.1:{templated.port}"})  # fmt: skip
    async with httpx.AsyncClient() as http:
        report = await render_report(settings, r["analysis"], None, r["picture"], http=http)
    assert report.source == "local" and templated.problems == ["bad api key"]
    assert report.warnings == ["Templated.io: Templated.io refused the API key; drawn locally instead"]
    await asyncio.sleep(0)
