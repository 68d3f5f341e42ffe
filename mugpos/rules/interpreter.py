"""Rule text -> Rule: the offline grammar first, an LLM only when the grammar cannot read it.

The chain is a LangChain Runnable: `RunnableLambda(grammar).with_fallbacks([llm_chain])`. The LLM
(any chat model named `provider:model` in `MUGPOS_RULES_LLM`, built lazily with `init_chat_model`)
gets few-shot examples produced by the grammar itself and must answer with the Rule schema; its
answer is validated against the vocabulary (COCO labels, sane thresholds) before it is accepted.
Without an LLM the grammar's `RuleError` (nearest phrasings + schema) goes back to the caller, who
may restate the rule as structured JSON (`from_structured`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mugpos.errors import ConfigError, RuleError
from mugpos.rules.grammar import (
    COMPACT_SCHEMA,
    TEMPLATES,
    crosscheck,
    nearest_phrasings,
    parse_rule,
    parse_rules,
)
from mugpos.rules.model import Rule
from mugpos.rules.relations.base import Unreadable
from mugpos.rules.verdicts import Explanation

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from mugpos.settings import Settings

MAX_SANE_CM = 1000.0
_FEW_SHOT = (
    "Keep mugs at least 6 inches away from laptops",
    "Ensure drinks are no closer than 4 inches to the edge of the table",
    "Position mugs on the right side of the workspace",
    "Cluster mugs within 12 inches of each other",
    "Place all beverages on coasters",
)
_SYSTEM = (
    "You turn a plain-language rule about where mugs, cups and drinks stand on a table into a JSON "
    "object following the Rule schema. Distances go in threshold_cm (1 in = 2.54 cm, 1 ft = 30.48 cm). "
    "Object labels are COCO class names (cup, bottle, wine glass, laptop, keyboard, mouse, cell phone, "
    "tv, remote, book, bowl, ...). Mugs, coffee and tea are 'cup'; drinks are cup, bottle, wine glass. "
    "If the rule is about something a COCO detector cannot see (coasters, paper, stoves, stability, "
    "the user's dominant hand), set checkable=false and give the reason. Answer with the JSON only."
)


def _sanity(rule: Rule) -> Rule:
    if rule.threshold_cm is not None and rule.threshold_cm > MAX_SANE_CM:
        raise RuleError(
            f"A distance of {rule.threshold_cm:g} cm is not a sane rule for a tabletop.",
            hint=f"Distances must lie between 0 and {MAX_SANE_CM:g} cm.",
        )
    if rule.relation in ("min_gap", "max_gap") and not (rule.threshold_cm or 0) > 0:
        raise RuleError("A gap rule needs a positive distance.", hint="Set threshold_cm > 0.")
    return rule


def validate_structured(data: dict[str, Any], *, text: str | None = None) -> Rule:
    """A Rule from assistant- or LLM-supplied JSON; the interpretation is always recomputed."""
    if not isinstance(data, dict):
        raise RuleError(
            "A structured rule must be a JSON object.",
            hint="Follow details.schema.",
            schema=COMPACT_SCHEMA,
        )
    payload = {k: v for k, v in data.items() if k not in ("interpretation", "id")}
    if text is not None:
        payload["text"] = text
    try:
        rule = Rule.model_validate(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5]]
        raise RuleError(
            "The structured rule is not valid: " + "; ".join(problems),
            hint="Fix the fields named above; the schema is in details.schema.",
            schema=COMPACT_SCHEMA,
            problems=problems,
        ) from None
    return _sanity(rule)


class RuleInterpreter:
    """Grammar first; an LLM (if configured) only for text the grammar cannot read."""

    def __init__(self, settings: Settings, llm: BaseChatModel | None = None) -> None:
        self.settings = settings
        self._llm = llm
        self._chain: Any = None

    # --- the LLM, created lazily --------------------------------------------------------
    def llm(self) -> BaseChatModel | None:
        if self._llm is None and self.settings.rules_llm:
            spec = self.settings.rules_llm
            if ":" not in spec:
                raise ConfigError(
                    f"MUGPOS_RULES_LLM={spec!r} is not 'provider:model'.",
                    hint="For example 'openai:gpt-4o-mini', 'anthropic:claude-sonnet-4-5' or 'ollama:llama3.1'.",
                )
            try:
                from langchain.chat_models import init_chat_model

                self._llm = init_chat_model(spec, temperature=0)
            except ImportError as exc:
                provider = spec.split(":", 1)[0]
                raise ConfigError(
                    f"The LangChain provider package for {provider!r} is not installed ({exc}).",
                    hint=f"pip install langchain-{provider}, or unset MUGPOS_RULES_LLM to use the grammar alone.",
                ) from None
            except Exception as exc:  # missing API key, unknown provider, ...
                raise ConfigError(
                    f"Could not create the rules model {spec!r}: {exc}",
                    hint="Set the provider's API key (e.g. OPENAI_API_KEY) or unset MUGPOS_RULES_LLM.",
                ) from None
        return self._llm

    def _grammar(self, text: str) -> dict[str, Any]:
        return {"rule": parse_rule(text, max_chars=self.settings.max_rule_chars), "via": "grammar"}

    def _messages(self, text: str) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        msgs: list[Any] = [SystemMessage(_SYSTEM)]
        for ex in _FEW_SHOT:
            rule = parse_rule(ex, max_chars=self.settings.max_rule_chars)
            msgs.append(HumanMessage(ex))
            msgs.append(AIMessage(json.dumps(rule.model_dump(exclude={"id", "interpretation"}))))
        msgs.append(HumanMessage(text))
        return msgs

    def _llm_chain(self, llm: BaseChatModel) -> Any:
        from langchain_core.output_parsers import JsonOutputParser
        from langchain_core.runnables import RunnableLambda

        # Raw dicts, not Rule objects: our own validation turns a bad answer into a RuleError.
        try:
            structured: Any = llm.with_structured_output(Rule.model_json_schema())
        except NotImplementedError:
            structured = llm | JsonOutputParser()

        def accept(answer: Any, text: str) -> dict[str, Any]:
            data = answer.model_dump() if isinstance(answer, Rule) else answer
            if not isinstance(data, dict):
                raise RuleError("The language model did not return a rule.", hint="Rephrase the rule.")
            rule = validate_structured(data, text=text)
            try:
                rule = crosscheck(rule, text)
            except Unreadable as exc:
                raise RuleError(
                    f"The language model's reading was not accepted: {exc.message}",
                    hint=exc.hint or "Rephrase like one of the suggestions or send a structured rule.",
                    suggestions=nearest_phrasings(text),
                    schema=COMPACT_SCHEMA,
                ) from None
            return {"rule": rule, "via": "llm"}

        async def run(text: str) -> dict[str, Any]:
            try:
                answer = await structured.ainvoke(self._messages(text))
            except Exception as exc:
                raise RuleError(
                    f"The grammar could not read the rule and the language model failed: {exc}",
                    hint="Rephrase like one of the suggestions or send a structured rule.",
                ) from None
            return accept(answer, text)

        return RunnableLambda(run)

    def chain(self) -> Any:
        """grammar, then (on RuleError) the model; the model's own rejection is what is reported."""
        if self._chain is None:
            from langchain_core.runnables import RunnableLambda

            grammar = RunnableLambda(self._grammar)
            llm = self.llm()
            if llm is None:
                self._chain = grammar
            else:
                fallback = self._llm_chain(llm)

                async def run(text: str) -> dict[str, Any]:
                    try:
                        return await grammar.ainvoke(text)
                    except RuleError as first:
                        try:
                            return await fallback.ainvoke(text)
                        except RuleError as exc:
                            exc.details.setdefault("grammar", first.message)
                            raise

                self._chain = RunnableLambda(run)
        return self._chain

    # --- public -----------------------------------------------------------------------------
    async def interpret(self, text: str) -> tuple[Rule, str]:
        """The rule and how it was read ('grammar' or 'llm'); RuleError when nothing could read it."""
        if not isinstance(text, str) or len(text) > self.settings.max_rule_chars:
            # refused early: never sent to a model
            parse_rule(text if isinstance(text, str) else "", max_chars=self.settings.max_rule_chars)
        try:
            # Without a model the chain is the grammar alone: call it directly rather than import
            # LangChain (seconds on a busy machine) for every CLI run.
            out = self._grammar(text) if self.settings.rules_llm is None else await self.chain().ainvoke(text)
        except RuleError as exc:
            if self.llm() is not None and "suggestions" not in exc.details:
                # the model's answer was rejected: report the grammar's suggestions too
                exc.details.setdefault("suggestions", nearest_phrasings(text))
                exc.details.setdefault("schema", COMPACT_SCHEMA)
            raise
        except ValidationError as exc:
            raise RuleError(
                f"The language model's answer was not a valid rule: {exc.errors()[0].get('msg')}",
                hint="Rephrase like one of the suggestions or send a structured rule.",
                suggestions=nearest_phrasings(text),
                schema=COMPACT_SCHEMA,
            ) from None
        return out["rule"], out["via"]

    async def interpret_all(self, text: str) -> list[Rule]:
        """Every rule the text states ("on the right and 10 cm from the edge" is two)."""
        try:
            return parse_rules(text, max_chars=self.settings.max_rule_chars)
        except RuleError:
            rule, _ = await self.interpret(text)
            return [rule]

    def from_structured(self, data: dict[str, Any]) -> Rule:
        return validate_structured(data)

    async def explain(self, text: str) -> Explanation:
        try:
            rule, via = await self.interpret(text)
        except RuleError as exc:
            return Explanation(
                text=text if isinstance(text, str) else "",
                understood=False,
                reason=exc.message,
                suggestions=list(exc.details.get("suggestions", [])) or list(TEMPLATES[:3]),
            )
        return Explanation(
            text=text,
            understood=True,
            interpretation=rule.interpretation,
            checkable=rule.checkable,
            reason=rule.reason,
            rule=rule.model_dump(mode="json"),
            via=via,
        )
