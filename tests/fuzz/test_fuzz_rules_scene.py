"""The rule grammar and the Scene JSON on arbitrary input: a result or one clean error, nothing else.

Rules: `parse_rule` returns a `Rule` or raises `RuleError`. Text is built from the grammar's own
vocabulary (so the fuzzer reaches deep parse paths) mixed with arbitrary unicode.
Scenes: validation raises only pydantic's `ValidationError`; a scene that validates goes through the
whole pure pipeline (scale, surface, positions, relations, rule evaluation, placement) without crashing.
"""

from __future__ import annotations

import contextlib
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mugpos.errors import MugposError, RuleError
from mugpos.rules.grammar import parse_rule
from mugpos.scene.labels import COCO_CLASSES
from mugpos.scene.model import Scene

FUZZ = settings.get_profile("mugpos-fuzz")

WORDS = [
    "keep", "mugs", "mug", "cups", "coffee", "tea", "drinks", "at", "least", "most", "away", "from",
    "near", "close", "to", "off", "on", "the", "laptop", "keyboard", "electronics", "edge", "left",
    "right", "side", "of", "table", "no", "never", "always", "must", "should", "not", "within",
    "inches", "in", '"', "cm", "mm", "m", "feet", "ft", "one", "two", "six", "ten", "twelve", "half",
    "6", "15.24", "-3", "0", "1e9", "1e400", "nan", "inf", "and", "or", "but", "than", "more", "less",
    "between", "behind", "in front", "above", "below", "center", "corner", ",", ".", "!", "?",
    "critical", "warning", "please", "only", "2", "mugs", "per", "desk", "monitor", "tv", "remote",
]  # fmt: skip

rule_text = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=0, max_size=25).map(" ".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=20).map(" ".join),
    st.text(max_size=300),
)


@FUZZ
@given(rule_text)
def test_rule_grammar_only_raises_rule_error(text: str) -> None:
    try:
        rule = parse_rule(text, max_chars=500)
    except RuleError as e:
        assert e.message and e.code
        json.dumps(e.to_dict(), default=str)  # the error itself serialises for every door
        return
    assert rule.text
    dumped = rule.model_dump(mode="json")
    json.dumps(dumped)
    for value in _numbers(dumped):
        assert math.isfinite(value), f"{text!r} produced a non-finite number: {dumped}"


def _numbers(obj: object) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in _numbers(v)]
    return []


# --- scenes -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)
coord = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-10, 5000), st.just(float("nan")))
detection = st.fixed_dictionaries(
    {"label": st.one_of(st.sampled_from(COCO_CLASSES), st.text(max_size=12)), "box": st.lists(coord, min_size=0, max_size=5)},
    optional={"id": st.one_of(st.text(max_size=8), st.integers()), "confidence": st.floats(-1, 2)},
)  # fmt: skip
scene_like = st.fixed_dictionaries(
    {
        "image": st.one_of(
            st.fixed_dictionaries({"width": st.integers(-5, 200_000), "height": st.integers(-5, 200_000)}),
            json_values,
        ),
        "objects": st.one_of(st.lists(detection, max_size=12), json_values),
    },
    optional={"px_per_cm": st.one_of(st.floats(), st.integers(-5, 20_000), st.text(max_size=4))},
)


@FUZZ
@given(st.one_of(scene_like, json_values))
def test_scene_validation_only_raises_validation_error(data: object) -> None:
    try:
        Scene.model_validate(data)
    except ValidationError:
        return


@FUZZ
@given(st.one_of(scene_like.map(json.dumps), st.text(max_size=200), st.binary(max_size=200)))
def test_scene_json_text_only_raises_validation_error(raw: str | bytes) -> None:
    try:
        Scene.model_validate_json(raw)
    except ValidationError:
        return


def test_deeply_nested_scene_json_is_a_validation_error() -> None:
    for depth in (1_000, 100_000):
        raw = (
            '{"image": {"width": 10, "height": 10, "x": '
            + "[" * depth
            + "]" * depth
            + "}, "
            + '"objects": []}'
        )
        try:
            Scene.model_validate_json(raw)
        except ValidationError:
            continue


valid_box = st.tuples(st.floats(0, 3000), st.floats(0, 3000), st.floats(0.5, 3000), st.floats(0.5, 3000)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)
valid_scene = st.builds(
    lambda w, h, ppc, objs: {"image": {"width": w, "height": h}, "px_per_cm": ppc, "objects": objs},
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.one_of(st.none(), st.floats(0.01, 500)),
    st.lists(
        st.fixed_dictionaries(
            {"label": st.sampled_from(["cup", "laptop", "keyboard", "dining table", "bottle", "book", "mouse", "wine glass"]),
             "box": valid_box}
        ),
        max_size=8,
    ),
)  # fmt: skip

RULES = [
    "keep mugs at least 6 inches from laptops",
    "keep drinks away from electronics",
    "keep mugs at least 5 cm from the table edge",
    "mugs must be on the right side of the keyboard",
]


@FUZZ
@given(valid_scene)
def test_valid_scenes_survive_the_whole_pure_pipeline(data: dict) -> None:
    from mugpos.engine.pipeline import measure_scene
    from mugpos.rules.evaluator import evaluate
    from mugpos.rules.solver import solve

    scene = Scene.model_validate(data)
    try:
        scene, scale, _surface, mugs, _relations = measure_scene(scene)
        rules = []
        for text in RULES:
            with contextlib.suppress(RuleError):
                rules.append(parse_rule(text, max_chars=500))
        verdicts = evaluate(rules, scene, scale)
        solved = solve(rules, scene, scale)
    except MugposError:
        return
    assert scale.px_per_cm > 0 and math.isfinite(scale.px_per_cm)
    assert len(mugs) == len(scene.mugs) and len(verdicts) == len(rules)
    for s in solved.suggestions:
        assert all(math.isfinite(c) for c in s.to_box)
