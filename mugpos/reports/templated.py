"""A small client for Templated.io's REST API (they publish no Python client).

Followed: https://templated.io/docs/ (Authentication: `Authorization: Bearer API_KEY`, base URL
https://api.templated.io), https://templated.io/docs/renders/create/ (POST /v1/render with
`template`, `format`, `layers` keyed by layer name, each layer taking `text`, `color`, `fill`,
`image_url`, `hide`, ...; the answer carries the render's `id` and `url`) and
https://templated.io/docs/uploads/create (POST /v1/upload, multipart `file`: JPG, PNG or WebP up
to 2 MB, optional `tags` and `externalId`). The photo goes up first so the template's image layer
can point at it; the finished render is then fetched from its URL.
"""

from __future__ import annotations

import io
from typing import Any

import httpx

from mugpos.errors import MugposError
from mugpos.reports.card import ReportCard, template_layers

UPLOAD_MAX_BYTES = 2 * 1024 * 1024


class TemplatedError(MugposError):
    code = "report_failed"


class TemplatedClient:
    def __init__(
        self,
        api_key: str,
        template_id: str,
        *,
        base_url: str = "https://api.templated.io",
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.template_id = template_id
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._own = http is None
        self._auth = {"Authorization": f"Bearer {api_key}"}

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, self.base_url + path, headers=self._auth, **kw)
        except httpx.HTTPError as exc:
            raise TemplatedError(
                f"Templated.io unreachable: {type(exc).__name__}", hint="check the network"
            ) from None
        if resp.status_code == 401:
            raise TemplatedError("Templated.io refused the API key", hint="check MUGPOS_TEMPLATED_API_KEY")
        if resp.status_code >= 400:
            raise TemplatedError(
                f"Templated.io answered {resp.status_code} to {method} {path}: {resp.text[:200]}",
                hint="check MUGPOS_TEMPLATED_TEMPLATE_ID and that the template has the layers in docs/agents.md",
            )
        return resp.json()

    async def upload(self, data: bytes, mime: str, external_id: str | None = None) -> str:
        """Upload the photo; returns the URL the render's image layer points at."""
        data, mime = _fit_upload(data, mime)
        ext = {"image/png": "png", "image/webp": "webp"}.get(mime, "jpg")
        form: dict[str, Any] = {"tags": "mugpos"}
        if external_id:
            form["externalId"] = external_id
        body = await self._call("POST", "/v1/upload", files={"file": (f"desk.{ext}", data, mime)}, data=form)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TemplatedError(
                "Templated.io's upload answer has no image URL", hint="pass a public photo URL instead"
            )
        return url

    async def render(self, card: ReportCard, photo_url: str | None) -> dict[str, Any]:
        """POST /v1/render; returns Templated.io's render object (`id`, `url`, `width`, ...)."""
        payload = {"template": self.template_id, "format": "png", "layers": template_layers(card, photo_url)}
        body = await self._call("POST", "/v1/render", json=payload)
        if not isinstance(body.get("url"), str):
            raise TemplatedError("Templated.io's render answer has no url", hint="try again later")
        return body

    async def download(self, url: str) -> bytes:
        try:
            resp = await self._http.get(url)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise TemplatedError(
                f"cannot fetch the render: {type(exc).__name__}", hint="try again later"
            ) from None
        return resp.content

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()


def _fit_upload(data: bytes, mime: str) -> tuple[bytes, str]:
    """Their upload takes JPG/PNG/WebP up to 2 MB: re-encode as JPEG, smaller, if it would not fit."""
    if mime in ("image/jpeg", "image/png", "image/webp") and len(data) <= UPLOAD_MAX_BYTES:
        return data, mime
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    for side in (2048, 1600, 1200, 800):
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=85)
        if out.tell() <= UPLOAD_MAX_BYTES:
            return out.getvalue(), "image/jpeg"
    return out.getvalue(), "image/jpeg"
