"""The LangChain interpreter: grammar first, a scripted chat model only when the grammar gives up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from mugpos.errors import ConfigError, RuleError
from mugpos.rules.interpreter import RuleInterpreter
from mugpos.settings import Settings

# The distance is in the text: a model's answer may not invent one (see test_llm_may_not_invent_a_distance).
ODD = "Coffee vessels ought to keep 20 cm of distance from the glowing rectangle"
ANSWER = {
    "text": ODD,
    "subject": {"kind": "objects", "labels": ["cup"], "word": "mug"},
    "target": {"kind": "objects", "labels": ["tv"], "word": "screen"},
    "relation": "min_gap",
    "threshold_cm": 20,
}


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, **kw)


class ToolCallingFake(GenericFakeChatModel):
    """A scripted model that supports with_structured_output by answering with a tool call."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def tool_reply(args: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "Rule", "args": args, "id": "call-1"}])


@pytest.mark.anyio
async def test_grammar_first_without_touching_the_llm(tmp_path: Path) -> None:
    llm = FakeListChatModel(responses=["this must not be used"])
    interp = RuleInterpreter(settings(tmp_path), llm=llm)
    rule, via = await interp.interpret("Keep mugs at least 6 inches away from laptops")
    assert via == "grammar" and rule.threshold_cm == 15.24
    assert llm.i == 0  # the scripted model was never called


@pytest.mark.anyio
async def test_llm_fallback_with_output_parser(tmp_path: Path) -> None:
    llm = FakeListChatModel(responses=[json.dumps(ANSWER)])
    rule, via = await RuleInterpreter(settings(tmp_path), llm=llm).interpret(ODD)
    assert via == "llm"
    assert rule.target is not None and rule.target.labels == ["tv"] and rule.threshold_cm == 20
    assert rule.interpretation == "every mug >= 20 cm from every screen"


@pytest.mark.anyio
async def test_llm_fallback_with_structured_output(tmp_path: Path) -> None:
    llm = ToolCallingFake(messages=iter([tool_reply(ANSWER)]))
    rule, via = await RuleInterpreter(settings(tmp_path), llm=llm).interpret(ODD)
    assert via == "llm" and rule.relation == "min_gap" and rule.subject.labels == ["cup"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "bad",
    [
        {**ANSWER, "target": {"kind": "objects", "labels": ["spaceship"]}},  # not a COCO label
        {**ANSWER, "threshold_cm": 5000},  # not sane on a table
        {**ANSWER, "threshold_cm": -3},
        {**ANSWER, "relation": "teleport"},
    ],
)
async def test_llm_answer_is_validated(tmp_path: Path, bad: dict[str, Any]) -> None:
    llm = FakeListChatModel(responses=[json.dumps(bad)])
    with pytest.raises(RuleError) as exc:
        await RuleInterpreter(settings(tmp_path), llm=llm).interpret(ODD)
    assert exc.value.details.get("suggestions")


@pytest.mark.anyio
async def test_llm_may_not_invent_a_distance(tmp_path: Path) -> None:
    """The model's answer is checked like the grammar's: no distance the text does not state."""
    text = "Coffee vessels ought to keep their distance from the glowing rectangle"
    llm = FakeListChatModel(responses=[json.dumps({**ANSWER, "text": text})])
    with pytest.raises(RuleError) as exc:
        await RuleInterpreter(settings(tmp_path), llm=llm).interpret(text)
    assert "does not state" in exc.value.message and exc.value.details["suggestions"]


@pytest.mark.anyio
async def test_llm_must_mark_unseeable_rules_not_checkable(tmp_path: Path) -> None:
    text = "Coffee vessels ought to keep 20 cm of distance from the glowing coasters"
    llm = FakeListChatModel(responses=[json.dumps({**ANSWER, "text": text})])
    with pytest.raises(RuleError) as exc:
        await RuleInterpreter(settings(tmp_path), llm=llm).interpret(text)
    assert "no box can judge" in exc.value.message


@pytest.mark.anyio
async def test_llm_reading_of_unknown_words_is_noted(tmp_path: Path) -> None:
    llm = FakeListChatModel(responses=[json.dumps(ANSWER)])
    rule, via = await RuleInterpreter(settings(tmp_path), llm=llm).interpret(ODD)
    assert via == "llm" and any("confirm" in n for n in rule.notes)


@pytest.mark.anyio
async def test_without_llm_error_carries_schema_and_suggestions(tmp_path: Path) -> None:
    interp = RuleInterpreter(settings(tmp_path))
    with pytest.raises(RuleError) as exc:
        await interp.interpret(ODD)
    assert exc.value.details["schema"]["title"] == "Rule" and len(exc.value.details["suggestions"]) == 3
    assert "structured" in exc.value.hint
    assert len(json.dumps(exc.value.details["schema"])) <= 2048 and '"relation"' in exc.value.hint
    expl = await interp.explain(ODD)
    assert not expl.understood and expl.suggestions
    ok = await interp.explain("Keep beverages away from paper documents")
    assert ok.understood and ok.checkable is False and ok.via == "grammar" and "paper" in (ok.reason or "")


@pytest.mark.anyio
async def test_too_long_never_reaches_the_llm(tmp_path: Path) -> None:
    llm = FakeListChatModel(responses=[json.dumps(ANSWER)])
    with pytest.raises(RuleError) as exc:
        await RuleInterpreter(settings(tmp_path, max_rule_chars=50), llm=llm).interpret("x" * 51)
    assert exc.value.code == "rule_too_long" and llm.i == 0


def test_from_structured(tmp_path: Path) -> None:
    interp = RuleInterpreter(settings(tmp_path))
    rule = interp.from_structured({**ANSWER, "interpretation": "something wrong"})
    assert rule.interpretation == "every mug >= 20 cm from every screen"
    with pytest.raises(RuleError) as exc:
        interp.from_structured({"relation": "min_gap"})
    assert "subject" in exc.value.message and exc.value.details["schema"]


@pytest.mark.anyio
async def test_missing_provider_is_a_config_error(tmp_path: Path) -> None:
    interp = RuleInterpreter(settings(tmp_path, rules_llm="nosuchprovider:some-model"))
    with pytest.raises(ConfigError):
        await interp.interpret(ODD)
    with pytest.raises(ConfigError):
        RuleInterpreter(settings(tmp_path, rules_llm="no-colon")).llm()
