"""A class whose objective stops being finite is reported where the caller
called from, once, while the other classes run on."""

from __future__ import annotations

import pytest

from deepinside.visualization import Preset, param
from deepinside.visualization.optim import Adam
from deepinside.visualization.render import render_classes

from .conftest import HALF
from .test_render import NanAbove


def test_the_failure_warning_points_at_the_caller_and_names_the_class():
    climb = Preset("climb", param.pixels(), Adam(0.1), steps=10)
    with pytest.warns(RuntimeWarning) as warned:
        out = render_classes(NanAbove(), [1, 0], climb, preprocessing=HALF, size=16, batch_size=1)
    assert len(warned) == 1 and warned[0].filename == __file__
    assert str(warned[0].message) == out.failures[1] and out.failures[1].startswith("class 0 (class 0): ")
    assert list(out.failures) == [1] and int(out.log.steps_run[0]) == 10
