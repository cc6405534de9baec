"""Methods declare themselves once; what shows them follows: the command
line's flags, the README's table, the tests' cheap settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from deepinside.attribution import METHODS
from deepinside.attribution.methods import (
    Method,
    cheap_options,
    flag_of,
    method_from_name,
    option,
    options_of,
)
from deepinside.cli import parse_args
from deepinside.cli._common import methods_from_args

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_is_in_the_readme_table_with_its_options(name):
    row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"README's methods table has no row for {name}"
    for option_name, (_, declared) in options_of(METHODS[name]).items():
        if declared.flag is not None:
            assert f"`{option_name}" in row, f"{name}'s option {option_name} is not in its README row"


@pytest.mark.parametrize("name", list(METHODS))
def test_every_option_with_a_flag_reaches_the_method_from_the_command_line(name):
    for option_name, (_, declared) in options_of(METHODS[name]).items():
        flag = flag_of(option_name, declared)
        if flag is None:
            continue
        value = declared.choices[-1] if declared.choices else declared.cheap or (declared.high or 2)
        args = parse_args(["saliency", "x.jpg", "--method", name, flag, str(value)])
        (method,) = methods_from_args(args)
        assert getattr(method, option_name) == declared.kind(value), (name, option_name)


def test_the_cheap_settings_are_valid_options():
    for cls in METHODS.values():
        method_from_name(cls.name, **cheap_options(cls))


def test_a_new_method_is_one_declaration():
    """A demonstration method declared as a class is taken by name, with its
    option, once registered; nothing else to edit."""

    @dataclasses.dataclass(frozen=True)
    class Squared(Method):
        name = "gradient-squared-demo"
        power: float = option(2.0, "the power", kind=float, low=1.0, high=4.0, cheap=2.0)

    METHODS[Squared.name] = Squared
    try:
        assert method_from_name("gradient-squared-demo", power=3.0) == Squared(3.0)
        assert cheap_options(Squared) == {"power": 2.0}
    finally:
        del METHODS[Squared.name]
