"""Report cards of a desk (picture, verdicts, the move): rendered by Templated.io from a template
when MUGPOS_TEMPLATED_API_KEY and MUGPOS_TEMPLATED_TEMPLATE_ID are set, else drawn locally with
Pillow into the same layers. `render_report` is the one entry for the doors."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mugpos.errors import MugposError
from mugpos.reports.card import ReportCard, report_card, template_layers
from mugpos.reports.local import render_local

if TYPE_CHECKING:
    import httpx

    from mugpos.settings import Settings

__all__ = ["Report", "ReportCard", "render_report", "report_card", "template_layers"]
log = logging.getLogger("mugpos.reports")


@dataclass
class Report:
    data: bytes
    mime: str
    source: Literal["templated", "local"]
    card: ReportCard
    url: str | None = None
    warnings: list[str] = field(default_factory=list)


async def render_report(
    settings: Settings,
    analysis: dict[str, Any],
    suggestion: dict[str, Any] | None = None,
    picture: bytes | None = None,
    picture_mime: str = "image/jpeg",
    *,
    photo_url: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> Report:
    """The card through Templated.io when configured (falling back to the local renderer, with a
    warning, if their API fails), else drawn locally."""
    card = report_card(analysis, suggestion)
    key = settings.templated_api_key.get_secret_value().strip() if settings.templated_api_key else ""
    warnings: list[str] = []
    if key and settings.templated_template_id:
        from mugpos.reports.templated import TemplatedClient

        client = TemplatedClient(
            key, settings.templated_template_id, base_url=settings.templated_base_url, http=http
        )
        try:
            url = photo_url
            if url is None and picture is not None:
                url = await client.upload(picture, picture_mime, external_id=analysis.get("analysis_id"))
            render = await client.render(card, url)
            data = await client.download(render["url"])
            return Report(data, "image/png", "templated", card, url=render["url"])
        except MugposError as exc:
            log.warning("Templated.io render failed (%s); drawing the card locally", exc.message)
            warnings.append(f"Templated.io: {exc.message}; drawn locally instead")
        finally:
            await client.aclose()
    elif key:
        warnings.append(
            "MUGPOS_TEMPLATED_API_KEY is set but MUGPOS_TEMPLATED_TEMPLATE_ID is not; drawn locally"
        )
    data = await asyncio.to_thread(render_local, card, picture)
    return Report(data, "image/png", "local", card, warnings=warnings)
