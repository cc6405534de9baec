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
