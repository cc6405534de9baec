"""The method options the page offers, derived from each method's
declaration (:func:`~deepinside.attribution.methods.option`): a slider for a
number with a range, a radio for choices, a box for the rest. Adding an
option to a method puts a control on the page; nothing here names a method.

The page offers what the command line offers: options declared without a
flag (a seed, a quadrature rule) stay Python-only here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..attribution.methods import Method, Option, flag_of, options_of
from ..errors import DeepInsideError
from .limits import Limits

ControlKind = Literal["slider", "choice", "number", "text"]


@dataclass(frozen=True)
class Control:
    """One control of the page for one option of one method."""

    method: str
    field: str
    label: str
    kind: ControlKind
    default: str | float | None  # None: an empty box (the method's own default)
    number: type | None = None  # int or float for a number, None for text and choices
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def elem_id(self) -> str:
        return f"option-{self.method}-{self.field}".replace("_", "-")


def controls_for(methods: Iterable[type[Method]], limits: Limits) -> list[Control]:
    """A control for every option with a command line flag of ``methods``, in
    their declared order."""
    return [
        _control(cls.name, field, default, declared, limits)
        for cls in methods
        for field, (default, declared) in options_of(cls).items()
        if flag_of(field, declared) is not None
    ]


def _control(method: str, field: str, default: object, declared: Option, limits: Limits) -> Control:
    label = f"{method}: {declared.help}"
    shown = None if default is None else str(default)
    if declared.choices:
        return Control(method, field, label, "choice", shown, choices=tuple(declared.choices))
    if declared.kind not in (int, float):
        return Control(method, field, label, "text", shown)
    number = default if isinstance(default, (int, float)) else None
    if declared.low is None or declared.high is None:
        return Control(method, field, label, "number", number, declared.kind)
    high = declared.high
    if declared.cheap is not None:
        # An option with a cheap setting sets how many passes a map costs: the server caps it.
        high = min(high, limits.max_samples)
        number = None if number is None else min(number, high)
    step = 1.0 if declared.kind is int else _step(declared.low, high)
    return Control(method, field, label, "slider", number, declared.kind, declared.low, high, step)


def _step(low: float, high: float) -> float:
    """A round step giving a slider of at least 50 positions."""
    return float(10 ** math.floor(math.log10((high - low) / 50)))


def method_settings(controls: Sequence[Control], values: Sequence[object]) -> dict[str, dict[str, object]]:
    """The page's values as options per method, checked against each control's
    range; an empty box leaves the option to the method's default."""
    if len(values) != len(controls):
        raise DeepInsideError(f"the page sent {len(values)} option values for {len(controls)} controls")
    settings: dict[str, dict[str, object]] = {}
    for control, value in zip(controls, values):
        found = _value(control, value)
        if found is not None:
            settings.setdefault(control.method, {})[control.field] = found
    return settings


def _value(control: Control, value: object) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if control.kind == "choice":
        if value not in control.choices:
            raise DeepInsideError(f"{control.label}: use one of {', '.join(control.choices)}, got {value!r}")
        return value
    if control.number is None:
        return str(value).strip()
    number = _number(control, value)
    low = -math.inf if control.low is None else control.low
    high = math.inf if control.high is None else control.high
    if not low <= number <= high:
        raise DeepInsideError(
            f"{control.label} must be from {low:g} to {high:g} on this server, got {number:g}"
        )
    return number


def _number(control: Control, value: object) -> float:
    try:
        if not isinstance(value, (int, float, str)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise DeepInsideError(f"{control.label} must be a number, got {value!r}") from None
    if not math.isfinite(number) or (control.number is int and number != int(number)):
        kind = "a whole number" if control.number is int else "a finite number"
        raise DeepInsideError(f"{control.label} must be {kind}, got {value!r}")
    return int(number) if control.number is int else number
