"""One typed health report for every store, and the one way a store falls back when its server is away.

Each store's `status()` returns a `ComponentHealth`, so the status operation, the dashboard and the
tests read fields (`degraded`, `reason`) instead of searching dicts by substring. The few numbers
that only one backend has (ANN rows, S3 puts, Redis hits) travel in `details`.

`open_with_fallback` is the fallback style all three stores share: the configured server is checked
when the store opens; if it does not answer and the settings allow it, the embedded default is used
and reports itself degraded, with the reason; otherwise the caller gets a clear `BackendError`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from mugpos.errors import BackendError

log = logging.getLogger("mugpos.stores")

S = TypeVar("S")
F = TypeVar("F")


class ComponentHealth(BaseModel):
    """How one store (or cache tier) is doing, in the same shape for every backend."""

    name: str = Field(description="what the component is for: rules, layouts, blobs, cache l1, cache l2")
    backend: str = Field(description="what answers: embedded, mongodb, local, s3, redis, in-process")
    configured: str = Field(
        "", description="what the settings asked for; differs from `backend` while a fallback answers"
    )
    enabled: bool = Field(True, description="false for a tier switched off in the settings (no Redis URL)")
    ok: bool = Field(True, description="false while calls to it fail (the last call raised an error)")
    degraded: bool = Field(False, description="calls succeed, but through a fallback, not as configured")
    reason: str | None = Field(None, description="why it is degraded or not ok; never holds credentials")
    details: dict[str, Any] = Field(default_factory=dict, description="backend-specific counters")

    def model_post_init(self, context: Any, /) -> None:
        if not self.configured:
            self.configured = self.backend

    @property
    def up(self) -> bool:
        """The configured backend answers itself: enabled, ok, and no fallback standing in."""
        return self.enabled and self.ok and not self.degraded

    def problem(self) -> str | None:
        """One line for the status operation's `degraded` list, or None when all is well."""
        if self.ok and not self.degraded:
            return None
        return f"{self.name}: {self.reason or ('degraded' if self.degraded else 'failing')}"


class StoreHealth(BaseModel):
    """The health of every store a process opened; the dashboard and `status` read this."""

    components: list[ComponentHealth] = Field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [p for c in self.components if (p := c.problem()) is not None]

    def by_name(self) -> dict[str, dict[str, Any]]:
        """The report as plain JSON keyed by component name (the status operation's shape)."""
        return {c.name: c.model_dump(mode="json") for c in self.components}


async def open_with_fallback(
    open_primary: Callable[[], Awaitable[S]],
    open_fallback: Callable[[str], Awaitable[F]],
    *,
    allowed: bool,
    fallback_name: str,
) -> S | F:
    """Open the configured backend; on `BackendError`, the embedded default (degraded) if allowed.

    `open_fallback` receives the reason, which the fallback store reports in its health. The
    reason is built from the error's message, which the stores keep free of credentials.
    """
    try:
        return await open_primary()
    except BackendError as exc:
        if not allowed:
            raise
        reason = f"{exc.message}; using {fallback_name}"
        log.warning("mugpos: %s", reason)
        return await open_fallback(reason)
