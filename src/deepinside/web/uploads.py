"""Uploaded photos, read by the command line's own safe reader.

The framework stores an upload under its temporary folder and hands over
that path; user text never becomes a path. What the user sees in an error
is the upload's own file name, not where the server keeps it.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ..errors import DeepInsideError, ImageError
from ..io.photos import IMAGE_SUFFIXES, load_photo, named
from .limits import Limits

#: The types the upload box offers; others are refused before any decoding.
ACCEPTED_SUFFIXES = tuple(sorted(IMAGE_SUFFIXES))


def display_name(path: str | os.PathLike[str]) -> str:
    """The name the user gave the file (the framework keeps it as the last part)."""
    return Path(path).name


def read_upload(path: str | os.PathLike[str], limits: Limits) -> Image.Image:
    """An uploaded file as an upright RGB photo, or a :class:`DeepInsideError`
    whose one line names the upload and says what is wrong."""
    path = Path(path)
    name = display_name(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DeepInsideError(
            f"{name}: not an image type this page takes (use one of {', '.join(ACCEPTED_SUFFIXES)})"
        )
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise DeepInsideError(
            f"{name}: {size / 1e6:.1f} MB is over this server's upload limit of {limits.max_upload_mb:g} MB "
            "(the server's --max-upload-mb)"
        )
    try:
        photo = load_photo(path, limits.max_pixels)
    except ImageError as err:
        # The reader names the file by its path on the server; say the user's name instead.
        reason = str(err).removeprefix(f"{path}: ")
        raise DeepInsideError(f"{name}: {reason}") from None
    return named(photo, path.stem)
