"""Argument checks the class-model modules share."""

from __future__ import annotations

from ..errors import DeepInsideError


def check_count(name: str, value: object) -> None:
    """Refuse anything but a whole number of at least 1 (bools too) for ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeepInsideError(f"{name} must be a whole number of at least 1, got {value!r}")
