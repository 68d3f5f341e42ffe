"""Events to signed POSTs: the webhook door.

`WebhookDispatcher.publish` is the event sink `Mugpos` calls: it wraps the event in an envelope
(`id`, `type`, `created_at`, `data`), writes one delivery per configured URL to the durable outbox
and wakes the sender. The sender claims due deliveries, signs each attempt afresh (new timestamp,
same body and event id), and on anything but a 2xx retries with exponential backoff and jitter
(honouring `Retry-After`), until `max_attempts`, after which the delivery is parked as `dead` in
the outbox (kept, counted, never silently dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mugpos import __version__
from mugpos.stores.outbox import Delivery, Outbox
from mugpos.webhooks.payload import encode_body
from mugpos.webhooks.signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

if TYPE_CHECKING:
    import httpx

    from mugpos.operations import Mugpos
    from mugpos.settings import Settings

log = logging.getLogger("mugpos.webhooks")

EVENT_TYPES = ("analysis.completed", "rule.violated", "suggestion.made")


@dataclass
class WebhookConfig:
    urls: list[str]
    secret: str | None
    events: list[str] = field(default_factory=lambda: list(EVENT_TYPES))
    timeout_s: float = 10.0
    max_attempts: int = 12
    backoff_s: float = 2.0
    backoff_max_s: float = 900.0
    lease_s: float = 60.0  # a claimed delivery is retried after this if its sender vanished
    poll_s: float = 5.0  # look for due retries at least this often
    batch: int = 32
    keep_sent_s: float = 7 * 24 * 3600

    @classmethod
    def from_settings(cls, s: Settings) -> WebhookConfig:
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
        return cls(
            urls=list(s.webhook_urls),
            secret=secret or None,
            events=list(s.webhook_events),
            timeout_s=s.webhook_timeout_s,
            max_attempts=s.webhook_max_attempts,
            backoff_s=s.webhook_backoff_s,
            backoff_max_s=s.webhook_backoff_max_s,
            lease_s=max(60.0, s.webhook_timeout_s * 3),
        )


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random
) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), capped, with +-25% jitter."""
    raw = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    return raw * (0.75 + 0.5 * rand())


class WebhookDispatcher:
    def __init__(
        self,
        outbox: Outbox,
        config: WebhookConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import httpx  # here, not at the top: a stdio server without webhooks never pays for it

        self.outbox = outbox
        self.config = config
        self._client = client or httpx.AsyncClient(timeout=config.timeout_s, follow_redirects=False)
        self._own_client = client is None
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    # --- producing -------------------------------------------------------------------------
    async def publish(self, event_type: str, data: dict[str, Any]) -> str | None:
        """The event sink: store one delivery per URL; returns the event id (None if not sent)."""
        if event_type not in self.config.events or not self.config.urls:
            return None
        event_id = "evt_" + uuid.uuid4().hex
        envelope = {
            "id": event_id,
            "type": event_type,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "data": data,
        }
        body = encode_body(envelope)
        now = self.clock()
        await self.outbox.add(
            [
                Delivery(
                    id=f"{event_id}-{i}",
                    event_id=event_id,
                    event_type=event_type,
                    url=url,
                    body=body,
                    next_at=now,
                    created_at=now,
                )
                for i, url in enumerate(self.config.urls)
            ]
        )
        self._wake.set()
        return event_id

    # --- sending ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="mugpos-webhooks")

    async def _loop(self) -> None:
        pruned_at = 0.0
        while True:
            self._wake.clear()  # before looking: a publish from here on wakes the next wait at once
            try:
                await self.run_once()
                if self.clock() - pruned_at > 3600:  # sent deliveries are kept a week, then forgotten
                    pruned_at = self.clock()
                    await self.outbox.prune(pruned_at - self.config.keep_sent_s)
                wait = self.config.poll_s
                due = await self.outbox.next_due()
                if due is not None:
                    wait = min(wait, max(0.0, due - self.clock()))
            except Exception:
                log.exception("webhook sender: outbox trouble; trying again shortly")
                wait = self.config.poll_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.01))

    async def run_once(self) -> int:
        """Claim what is due and send it, concurrently; returns how many were attempted."""
        due = await self.outbox.claim_due(self.clock(), self.config.batch, self.config.lease_s)
        if due:
            await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def _deliver(self, d: Delivery) -> None:
        import httpx

        ts = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"mugpos-webhooks/{__version__}",
            EVENT_ID_HEADER: d.event_id,
            EVENT_TYPE_HEADER: d.event_type,
            TIMESTAMP_HEADER: str(ts),
            ATTEMPT_HEADER: str(d.attempts),
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, ts, d.body)
        retry_after: float | None = None
        try:
            resp = await self._client.post(
                d.url, content=d.body.encode(), headers=headers, timeout=self.config.timeout_s
            )
            if 200 <= resp.status_code < 300:
                await self.outbox.mark_sent(d.id, self.clock())
                return
            error = f"HTTP {resp.status_code}"
            retry_after = _retry_after(resp.headers.get("retry-after"), self.clock())
        except httpx.TimeoutException:
            error = f"timed out after {self.config.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if d.attempts >= self.config.max_attempts:
            log.warning("webhook %s to %s dead after %d attempts: %s", d.event_id, d.url, d.attempts, error)
            await self.outbox.mark_dead(d.id, error)
            return
        delay = backoff_delay(d.attempts, self.config.backoff_s, self.config.backoff_max_s)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.config.backoff_max_s)
        log.info(
            "webhook %s to %s failed (%s); retry %d in %.1f s", d.event_id, d.url, error, d.attempts, delay
        )
        await self.outbox.mark_retry(d.id, self.clock() + delay, error)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_client:
            await self._client.aclose()
        await self.outbox.aclose()


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def attach_webhooks(app: Mugpos) -> WebhookDispatcher | None:
    """Register the webhook door on `app` when URLs are configured; the caller starts and closes it."""
    from mugpos.errors import ConfigError
    from mugpos.stores.outbox import open_outbox

    config = WebhookConfig.from_settings(app.settings)
    if not config.urls:
        return None
    unknown = sorted(set(config.events) - set(EVENT_TYPES))
    if unknown:
        raise ConfigError(
            f"unknown webhook event types: {', '.join(unknown)}", hint=f"use: {', '.join(EVENT_TYPES)}"
        )
    if config.secret is None:
        log.warning("webhooks are not signed: set MUGPOS_WEBHOOK_SECRET")
    dispatcher = WebhookDispatcher(open_outbox(app.settings), config)
    app.event_sinks.append(dispatcher.publish)
    return dispatcher


def door(app: Mugpos) -> Any:
    """The webhook door for `mugpos.mcp_server.http.door_factories`: no routes, a lifespan that
    registers the outbox on `app.event_sinks` and runs the sender while the server is up."""
    from mugpos.access import HttpDoor

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        dispatcher = attach_webhooks(app)
        if dispatcher is None:
            yield
            return
        dispatcher.start()
        try:
            yield
        finally:
            if dispatcher.publish in app.event_sinks:
                app.event_sinks.remove(dispatcher.publish)
            await dispatcher.aclose()

    return HttpDoor(routes=[], lifespan=lifespan, name="webhooks")
