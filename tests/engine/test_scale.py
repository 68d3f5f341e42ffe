"""Scale estimation on hand-made scenes."""

from __future__ import annotations

import pytest

from mugpos.scene.model import Scene
from mugpos.scene.scale import ASSUMED_SURFACE_CM, KNOWN_SIZES, estimate_scale


def _scene(
    objects: list[dict], px_per_cm: float | None = None, size: tuple[int, int] = (1600, 1000)
) -> Scene:
    return Scene.model_validate(
        {"image": {"width": size[0], "height": size[1]}, "px_per_cm": px_per_cm, "objects": objects}
    )


def _obj(label: str, x: float, y: float, w: float, h: float, **kw: object) -> dict:
    return {"label": label, "box": [x, y, x + w, y + h], **kw}


def test_given_wins() -> None:
    s = estimate_scale(_scene([_obj("cup", 100, 100, 95, 95)], px_per_cm=7.5))
    assert (s.px_per_cm, s.source, s.uncertainty_pct) == (7.5, "given", 0.0)


def test_one_mug_gives_its_typical_size() -> None:
    cup_cm = KNOWN_SIZES["cup"].cm
    s = estimate_scale(_scene([_obj("cup", 500, 400, cup_cm * 10, 90)]))
    assert s.source == "estimated" and s.references == ["cup-1"]
    assert s.px_per_cm == pytest.approx(10.0, rel=0.01)
    assert 10 <= s.uncertainty_pct <= 40  # one mug: its natural spread, nothing better
    assert "cup-1" in s.note


def test_agreeing_objects_combine_and_narrow_uncertainty() -> None:
    ppc = 8.0
    objs = [
        _obj("cup", 300, 400, KNOWN_SIZES["cup"].cm * ppc, 80),
        _obj("laptop", 600, 300, KNOWN_SIZES["laptop"].cm * ppc, 180),
        _obj("keyboard", 600, 600, KNOWN_SIZES["keyboard"].cm * ppc * 1.05, 60),
    ]
    one = estimate_scale(_scene(objs[:1]))
    three = estimate_scale(_scene(objs))
    assert three.px_per_cm == pytest.approx(ppc, rel=0.04)
    assert three.uncertainty_pct < one.uncertainty_pct
    assert set(three.references) == {"cup-1", "laptop-1", "keyboard-1"}


def test_outliers_do_not_drag_it() -> None:
    ppc = 10.0
    cup = KNOWN_SIZES["cup"].cm * ppc
    objs = [
        _obj("cup", 100, 400, cup, 90),
        _obj("cup", 400, 400, cup * 1.03, 90),
        _obj("cup", 700, 400, cup * 0.97, 90),
        _obj("laptop", 900, 100, KNOWN_SIZES["laptop"].cm * ppc * 2.5, 300, confidence=0.9),  # way off
        _obj("bowl", 300, 700, KNOWN_SIZES["bowl"].cm * ppc * 0.3, 50),  # way off the other side
    ]
    s = estimate_scale(_scene(objs, size=(2400, 1200)))
    assert s.px_per_cm == pytest.approx(ppc, rel=0.03)
    assert "laptop-1" not in s.references and "bowl-1" not in s.references
    assert "outliers" in s.note


def test_border_cut_and_unknown_objects_are_skipped() -> None:
    objs = [
        _obj("laptop", 0, 100, 200, 200),  # cut by the left border: its width is not its width
        _obj("person", 500, 100, 300, 800),  # no typical size
        _obj("cup", 900, 500, 95, 95),
    ]
    s = estimate_scale(_scene(objs))
    assert s.references == ["cup-1"]
    assert s.px_per_cm == pytest.approx(95 / KNOWN_SIZES["cup"].cm, rel=0.01)


def test_assumed_fallback() -> None:
    s = estimate_scale(_scene([_obj("person", 500, 100, 300, 800)], size=(1200, 800)))
    assert s.source == "assumed" and s.references == []
    assert s.px_per_cm == pytest.approx(1200 / ASSUMED_SURFACE_CM)
    assert s.uncertainty_pct >= 40 and "assumed" in s.note
    table = estimate_scale(_scene([_obj("dining table", 100, 200, 960, 500)], size=(1200, 800)))
    assert table.px_per_cm == pytest.approx(960 / ASSUMED_SURFACE_CM) and "dining-table-1" in table.note
    empty = estimate_scale(_scene([]))
    assert empty.source == "assumed"
