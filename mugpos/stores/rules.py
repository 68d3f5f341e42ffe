"""Where rules live between calls: a JSON file by default, MongoDB when configured.

Ids are short and stable (`r-` + 6 hex digits of a hash of the rule's text and meaning), so adding
the same rule twice returns the stored one. The embedded store writes atomically (temp file +
os.replace) under a lock. `open_rule_store` checks MongoDB when it opens; if the server cannot be
reached and `mongodb_fallback` is on, the embedded store answers instead and says so in `status()`
(the fallback style all stores share, `mugpos.stores.health.open_with_fallback`). The MongoDB client
is the one the layout store uses for the same URI (`mugpos.stores.mongo`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mugpos.errors import BackendError, ConfigError, NotFound
from mugpos.rules.model import Rule
from mugpos.rules.verdicts import Severity
from mugpos.stores import mongo as mongo_clients
from mugpos.stores.health import ComponentHealth, open_with_fallback

if TYPE_CHECKING:
    from mugpos.settings import Settings


class RuleStore(Protocol):
    async def add(self, rule: Rule) -> Rule: ...
    async def list(self, *, enabled_only: bool = False) -> list[Rule]: ...
    async def get(self, id: str) -> Rule: ...
    async def remove(self, id: str) -> bool: ...
    async def set_enabled(self, id: str, enabled: bool) -> Rule: ...
    async def set_severity(self, id: str, severity: Severity) -> Rule: ...
    def status(self) -> ComponentHealth: ...
    async def aclose(self) -> None: ...


def rule_id(rule: Rule, salt: int = 0) -> str:
    key = json.dumps(
        {
            "text": " ".join(rule.text.lower().split()),
            "rule": rule.model_dump(mode="json", exclude={"id", "text", "enabled", "severity"}),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()
    return f"r-{digest[:6]}"


def _not_found(id: str) -> NotFound:
    return NotFound(f"No rule with id {id!r}.", hint="List the rules to see their ids.")


def _with(rule: Rule, **changes: Any) -> Rule:
    data = rule.model_dump()
    data.update(changes)
    data["interpretation"] = ""
    return Rule.model_validate(data)


class EmbeddedRuleStore:
    """Rules in one JSON file; survives restarts; safe for concurrent writers in one process."""

    def __init__(self, path: Path | str, *, degraded_reason: str | None = None) -> None:
        self.path = Path(path)
        self.degraded_reason = degraded_reason
        self._lock = asyncio.Lock()

    def _read(self) -> list[Rule]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"Cannot read the rule file {self.path}: {exc}", hint="Fix or remove the file."
            ) from None
        return [Rule.model_validate(r) for r in data.get("rules", [])]

    def _write(self, rules: list[Rule]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"rules": [r.model_dump(mode="json") for r in rules]}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rules-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def add(self, rule: Rule) -> Rule:
        async with self._lock:
            rules = self._read()
            for salt in range(1000):
                rid = rule_id(rule, salt)
                existing = next((r for r in rules if r.id == rid), None)
                if existing is None:
                    break
                if existing.text == rule.text:
                    return existing
            stored = rule.model_copy(update={"id": rid})
            rules.append(stored)
            await asyncio.to_thread(self._write, rules)
            return stored

    async def list(self, *, enabled_only: bool = False) -> list[Rule]:
        async with self._lock:
            rules = self._read()
        return [r for r in rules if r.enabled or not enabled_only]

    async def get(self, id: str) -> Rule:
        for r in await self.list():
            if r.id == id:
                return r
        raise _not_found(id)

    async def remove(self, id: str) -> bool:
        async with self._lock:
            rules = self._read()
            kept = [r for r in rules if r.id != id]
            if len(kept) == len(rules):
                return False
            await asyncio.to_thread(self._write, kept)
            return True

    async def _update(self, id: str, **changes: Any) -> Rule:
        async with self._lock:
            rules = self._read()
            for i, r in enumerate(rules):
                if r.id == id:
                    rules[i] = _with(r, **changes)
                    await asyncio.to_thread(self._write, rules)
                    return rules[i]
        raise _not_found(id)

    async def set_enabled(self, id: str, enabled: bool) -> Rule:
        return await self._update(id, enabled=enabled)

    async def set_severity(self, id: str, severity: Severity) -> Rule:
        return await self._update(id, severity=severity)

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="rules",
            backend="embedded",
            configured="mongodb" if self.degraded_reason else "embedded",
            degraded=self.degraded_reason is not None,
            reason=self.degraded_reason,
            details={"path": str(self.path)},
        )

    async def aclose(self) -> None:
        return None


class MongoRuleStore:
    """Rules in a MongoDB collection `rules`, one document per rule with `_id` = rule id."""

    def __init__(self, uri: str, db: str, *, timeout_s: float = 3.0) -> None:
        self.db_name = db
        self.timeout_s = timeout_s
        self._where = mongo_clients.redact_uri(uri)
        self._uri = uri
        self._client: Any = None

    def _col(self) -> Any:
        if self._client is None:
            self._client = mongo_clients.acquire(self._uri, timeout_s=self.timeout_s)
        return self._client[self.db_name]["rules"]

    async def open(self) -> MongoRuleStore:
        """Check the server answers (a `BackendError` naming the server, never its credentials)."""
        self._col()
        try:
            await self._client.admin.command("ping")
        except Exception as exc:
            raise BackendError(
                f"MongoDB unreachable at {self._where}: {type(exc).__name__}",
                hint="Check MUGPOS_MONGODB_URI and that the server is up.",
            ) from exc
        return self

    @staticmethod
    def _doc(rule: Rule) -> dict[str, Any]:
        return {"_id": rule.id, **rule.model_dump(mode="json")}

    @staticmethod
    def _rule(doc: dict[str, Any]) -> Rule:
        doc = dict(doc)
        doc.pop("_id", None)
        return Rule.model_validate(doc)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:
            if isinstance(exc, NotFound | BackendError):
                raise
            raise BackendError(f"MongoDB rule store failed: {exc}", hint="Check MongoDB.") from None

    async def add(self, rule: Rule) -> Rule:
        col = self._col()
        for salt in range(1000):
            rid = rule_id(rule, salt)
            existing = await self._call(col.find_one({"_id": rid}))
            if existing is None:
                stored = rule.model_copy(update={"id": rid})
                await self._call(col.insert_one(self._doc(stored)))
                return stored
            if existing.get("text") == rule.text:
                return self._rule(existing)
        raise BackendError("Could not allocate a rule id.")

    async def list(self, *, enabled_only: bool = False) -> list[Rule]:
        query = {"enabled": True} if enabled_only else {}
        cursor = self._col().find(query).sort("_id", 1)
        docs = await self._call(cursor.to_list(None))
        return [self._rule(d) for d in docs]

    async def get(self, id: str) -> Rule:
        doc = await self._call(self._col().find_one({"_id": id}))
        if doc is None:
            raise _not_found(id)
        return self._rule(doc)

    async def remove(self, id: str) -> bool:
        res = await self._call(self._col().delete_one({"_id": id}))
        return res.deleted_count > 0

    async def _update(self, id: str, **changes: Any) -> Rule:
        rule = _with(await self.get(id), **changes)
        await self._call(self._col().replace_one({"_id": id}, self._doc(rule)))
        return rule

    async def set_enabled(self, id: str, enabled: bool) -> Rule:
        return await self._update(id, enabled=enabled)

    async def set_severity(self, id: str, severity: Severity) -> Rule:
        return await self._update(id, severity=severity)

    def status(self) -> ComponentHealth:
        return ComponentHealth(
            name="rules", backend="mongodb", details={"server": self._where, "database": self.db_name}
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await mongo_clients.release(client)


async def open_rule_store(settings: Settings) -> RuleStore:
    """The configured store; MongoDB with the embedded store as a degraded fallback unless
    `mongodb_fallback` is off (then an unreachable server is a `BackendError`)."""
    path = settings.data_dir / "rules.json"
    if settings.rule_store != "mongodb":
        return EmbeddedRuleStore(path)
    if settings.mongodb_uri is None:
        raise ConfigError(
            "MUGPOS_RULE_STORE=mongodb needs MUGPOS_MONGODB_URI.",
            hint="Set the URI or use the embedded store.",
        )
    uri = settings.mongodb_uri.get_secret_value()

    async def mongo() -> RuleStore:
        store = MongoRuleStore(uri, settings.mongodb_db, timeout_s=settings.mongodb_timeout_s)
        try:
            return await store.open()
        except BaseException:
            await store.aclose()
            raise

    async def embedded(reason: str) -> RuleStore:
        return EmbeddedRuleStore(path, degraded_reason=reason)

    return await open_with_fallback(
        mongo, embedded, allowed=settings.mongodb_fallback, fallback_name=f"the rule file {path}"
    )
