"""The one exception type users see for bad input.

Anything raised as :class:`DeepInsideError` is a mistake in what the user asked
for (a missing file, an unknown class, a wrong option); its message is one line
that says what is wrong and what to do. The command line prints it without a
traceback. Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations


class DeepInsideError(ValueError):
    """Bad input, explained in one line."""


class ImageError(DeepInsideError):
    """A file that cannot be read as a photo."""


def check_count(name: str, value: object) -> None:
    """Refuse anything but a whole number of at least 1 (bools too) for ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeepInsideError(f"{name} must be a whole number of at least 1, got {value!r}")
