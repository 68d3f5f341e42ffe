"""Rule management: add, list, get, remove, enable/disable and explain saved placement rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mugpos.errors import NotFound, RuleError
from mugpos.operations.core import Core
from mugpos.results import Explanation, Removed, RuleInfo, RuleList

if TYPE_CHECKING:
    from mugpos.rules.model import Rule


class RuleOps(Core):
    async def add_rule(
        self, text: str | None = None, rule: dict[str, Any] | None = None, severity: str | None = None
    ) -> RuleInfo:
        if (text is None) == (rule is None):
            raise RuleError("give either the rule's text or a structured rule", hint="add_rule(text='...')")
        parsed = (
            (await self.interpreter.interpret(text))[0]
            if text is not None
            else self.interpreter.from_structured(rule or {})
        )
        if severity is not None:
            parsed = parsed.model_copy(update={"severity": severity})
        store = await self._rule_store()
        return _rule_info(await store.add(parsed))

    async def list_rules(self) -> RuleList:
        store = await self._rule_store()
        return RuleList(rules=[_rule_info(r) for r in await store.list()])

    async def get_rule(self, rule_id: str) -> RuleInfo:
        store = await self._rule_store()
        return _rule_info(await store.get(rule_id))

    async def remove_rule(self, rule_id: str) -> Removed:
        store = await self._rule_store()
        removed = await store.remove(rule_id)
        if not removed:
            raise NotFound(
                f"no rule with id {rule_id!r}",
                hint="list_rules shows the ids",
                door_hints={"cli": "`mugpos rules list` shows the ids"},
            )
        return Removed(id=rule_id, removed=True)

    async def set_rule_enabled(self, rule_id: str, enabled: bool) -> RuleInfo:
        store = await self._rule_store()
        return _rule_info(await store.set_enabled(rule_id, enabled))

    async def explain_rule(self, text: str) -> Explanation:
        return await self.interpreter.explain(text)


def _rule_info(rule: Rule) -> RuleInfo:
    assert rule.id is not None
    return RuleInfo(
        id=rule.id,
        text=rule.text,
        interpretation=rule.interpretation,
        severity=rule.severity,
        enabled=rule.enabled,
        checkable=rule.checkable,
        reason=rule.reason,
        rule=rule.model_dump(mode="json"),
    )
