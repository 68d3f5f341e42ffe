"""The typed health every store reports, and the one fallback style, read as the status and dashboard do."""

from __future__ import annotations

import pytest
from testkit import free_port

from mugpos.dashboard.snapshot import backends_up
from mugpos.errors import BackendError
from mugpos.stores.blobs import LocalBlobStore, open_blob_store
from mugpos.stores.cache import DualCache
from mugpos.stores.health import ComponentHealth, StoreHealth, open_with_fallback
from mugpos.stores.layouts import EmbeddedLayoutStore, open_layout_store
from mugpos.stores.rules import EmbeddedRuleStore, open_rule_store

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("health", "problem"),
    [
        (ComponentHealth(name="rules", backend="embedded"), None),
        (ComponentHealth(name="blobs", backend="s3", ok=False, reason="put: timeout"), "blobs: put: timeout"),
        (ComponentHealth(name="cache l1", backend="redis", degraded=True), "cache l1: degraded"),
        (ComponentHealth(name="cache l1", backend="redis", enabled=False), None),
    ],
)
def test_problem_lines(health: ComponentHealth, problem: str | None) -> None:
    assert health.problem() == problem
    assert health.configured == health.backend  # no fallback: what answers is what was asked for


async def test_fallback_runs_only_on_backend_errors_and_only_when_allowed() -> None:
    async def down() -> str:
        raise BackendError("MongoDB unreachable at mongodb://h:1: ServerSelectionTimeoutError")

    async def embedded(reason: str) -> str:
        return reason

    reason = await open_with_fallback(down, embedded, allowed=True, fallback_name="the file")
    assert reason.startswith("MongoDB unreachable") and reason.endswith("; using the file")
    with pytest.raises(BackendError):
        await open_with_fallback(down, embedded, allowed=False, fallback_name="the file")

    async def broken() -> str:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await open_with_fallback(broken, embedded, allowed=True, fallback_name="the file")


async def test_every_store_falls_back_the_same_way(make_settings) -> None:
    """MongoDB down for rules and layouts, S3 down for blobs: each opens its embedded default, degraded."""
    dead = f"127.0.0.1:{free_port()}"
    settings = make_settings(
        rule_store="mongodb",
        layout_store="mongodb",
        mongodb_uri=f"mongodb://user:secret@{dead}/?directConnection=true",
        mongodb_timeout_s=0.3,
        blob_store="s3",
        s3_endpoint_url=f"http://{dead}",
        s3_fallback=True,
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    rules, layouts, blobs = (
        await open_rule_store(settings),
        await open_layout_store(settings),
        await open_blob_store(settings),
    )
    assert isinstance(rules, EmbeddedRuleStore) and isinstance(layouts, EmbeddedLayoutStore)
    assert isinstance(blobs, LocalBlobStore)
    report = StoreHealth(components=[rules.status(), layouts.status(), blobs.status()])
    for health, configured in zip(report.components, ("mongodb", "mongodb", "s3"), strict=True):
        assert health.degraded and health.ok and not health.up and health.configured == configured
        assert health.reason and "secret" not in health.reason and dead in health.reason
    assert [p.split(":")[0] for p in report.problems] == ["rules", "layouts", "blobs"]
    cache = DualCache(settings).status()  # no Redis URL: the tier is off, not down
    status = {
        "cache": {t: h.model_dump(mode="json") for t, h in cache.items()},
        "stores": report.by_name(),
    }
    assert backends_up(status) == {"mongodb": False}
    await layouts.aclose()


async def test_s3_down_without_fallback_is_a_clear_error(make_settings) -> None:
    settings = make_settings(
        blob_store="s3", s3_endpoint_url=f"http://127.0.0.1:{free_port()}", s3_access_key_id="k",
        s3_secret_access_key="s",
    )  # fmt: skip
    with pytest.raises(BackendError, match="S3 blob store"):
        await open_blob_store(settings)
