"""The page's method controls come from the methods' declarations: adding an
option to a method puts a control on the page without touching web/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

import deepinside
from deepinside.attribution import METHODS
from deepinside.attribution.methods import Gradient, flag_of, option, options_of
from deepinside.errors import DeepInsideError
from deepinside.web.explain import check_methods
from deepinside.web.limits import Limits
from deepinside.web.options import controls_for, method_settings
from deepinside.web.session import Server


@dataclass(frozen=True)
class Sharpened(Gradient):
    """A demonstration method: the gradient, with two options of its own."""

    name: ClassVar[str] = "sharpened-demo"
    passes: int = option(3, "demo passes", kind=int, low=1, high=9, cheap=1)
    blend: str = option("soft", "demo blend", choices=("soft", "hard"))
    strength: float = option(0.5, "demo strength", kind=float, low=0.0, high=2.0)
    hidden: int = option(0, "python only", kind=int, flag=None)


def test_a_declared_option_becomes_a_control() -> None:
    controls = {c.field: c for c in controls_for([Sharpened], Limits(max_samples=5))}
    assert set(controls) == {"passes", "blend", "strength"}  # no flag, no control: as on the command line
    passes, blend, strength = controls["passes"], controls["blend"], controls["strength"]
    assert (passes.kind, passes.label, passes.low, passes.high, passes.step, passes.default) == (
        "slider",
        "sharpened-demo: demo passes",
        1,
        5,  # a costly option (it declares a cheap setting) is capped by the server
        1.0,
        3,
    )
    assert (blend.kind, blend.choices, blend.default) == ("choice", ("soft", "hard"), "soft")
    assert (strength.kind, strength.low, strength.high, strength.default) == ("slider", 0.0, 2.0, 0.5)
    assert strength.step is not None and 0 < strength.step <= (2.0 - 0.0) / 50


def test_the_page_s_values_reach_the_method(
    monkeypatch: pytest.MonkeyPatch, model: deepinside.Classifier, tmp_path: Path
) -> None:
    monkeypatch.setitem(METHODS, Sharpened.name, Sharpened)
    controls = controls_for([METHODS["gradient"], Sharpened], Limits())
    values: list[object] = [c.default for c in controls]
    values[[c.field for c in controls].index("passes")] = 7.0  # sliders send floats
    values[[c.field for c in controls].index("blend")] = "hard"
    server = Server(model, Limits(), tmp_path)
    (method,) = check_methods([Sharpened.name], server, method_settings(controls, values))
    assert method == Sharpened(passes=7, blend="hard", strength=0.5)
    values[[c.field for c in controls].index("blend")] = "melted"
    with pytest.raises(DeepInsideError, match="sharpened-demo: demo blend: use one of soft, hard"):
        method_settings(controls, values)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_s_flagged_options_are_on_the_page_as_declared(name: str) -> None:
    limits = Limits()
    controls = {c.field: c for c in controls_for([METHODS[name]], limits)}
    declared = {f: (d, o) for f, (d, o) in options_of(METHODS[name]).items() if flag_of(f, o) is not None}
    assert set(controls) == set(declared)
    for field, (default, spec) in declared.items():
        control = controls[field]
        assert control.label == f"{name}: {spec.help}"
        assert control.choices == (spec.choices or ())
        if control.kind == "slider":
            assert control.low == spec.low and spec.high is not None
            assert control.high == (
                min(spec.high, limits.max_samples) if spec.cheap is not None else spec.high
            )
            assert control.default == default


def test_an_empty_box_leaves_the_method_s_default() -> None:
    controls = controls_for([METHODS["grad-cam"]], Limits())
    assert [c.kind for c in controls] == ["text"]
    assert method_settings(controls, [""]) == {}
    assert method_settings(controls, ["features.3"]) == {"grad-cam": {"layer": "features.3"}}


def test_the_page_builds_a_control_for_a_new_method_s_option(
    monkeypatch: pytest.MonkeyPatch, model: deepinside.Classifier, tmp_path: Path
) -> None:
    pytest.importorskip("gradio")
    from deepinside.web.app import build_app

    monkeypatch.setitem(METHODS, Sharpened.name, Sharpened)
    app = build_app(Server(model, Limits(), tmp_path))
    labels = {getattr(block, "label", None): block for block in app.blocks.values()}
    slider = labels["sharpened-demo: demo passes"]
    assert (type(slider).__name__, slider.minimum, slider.maximum, slider.value) == ("Slider", 1, 9, 3)
    assert type(labels["sharpened-demo: demo blend"]).__name__ == "Radio"
    assert "smoothgrad: noisy copies" in labels
