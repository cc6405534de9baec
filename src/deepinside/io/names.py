"""How every output file is named: one scheme for saliency, localisation and class models.

A file about a photo is named ``STEM.TAG[.CLASS].KIND.EXT``:

- ``STEM``: the photo's file name without its suffix (``cat`` for ``cat.jpg``),
  made distinct within a run: a second ``cat.jpg`` from another folder is
  ``cat-2`` (:class:`UniqueStems`). A batch run, which must name a photo the
  same way whichever run of a resumed folder reaches it, uses the photo's key
  instead (its path relative to the input, suffix kept: :func:`key_stem`), so
  its output folders mirror the input's tree.
- ``TAG``: what made the file, so that runs with different methods can share
  a folder: the attribution method (``gradient``, ``grad-cam``, ...) or, for
  boxes, ``localize-CONFIG`` (``localize-default``, ``localize-paper``, with
  ``-METHOD`` added where ``--method`` replaced the config's method).
- ``CLASS``: ``NNNN-label``, the class index in four digits and the first
  class name as a slug (``0285-egyptian-cat``); only for files about one class.
- ``KIND``: ``saliency`` (grey map), ``overlay``, ``raw`` (the map's values),
  ``boxes`` (photo with boxes), ``mask``.

Records: ``STEM.json`` lists every saliency map of the photo in the folder,
whatever the method; ``STEM.localize-CONFIG.json`` holds one localisation run's
boxes. A batch run keeps all of a photo's maps in one ``STEM.npz``
(:func:`maps_file`). A class model is about a class, not a photo:
``CLASS.png``, ``CLASS.log.csv`` and ``CLASS.log.json``.

Example: ``cat.gradient.0285-egyptian-cat.overlay.png``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

#: Longest label slug kept in a file name (the index already makes it unique).
_SLUG_LENGTH = 40


def slug(text: str) -> str:
    """``text`` as a file-name part: lower case, each run of other characters
    than ``a-z0-9`` one ``-``, at most 40 characters (``Egyptian cat`` ->
    ``egyptian-cat``); ``class`` where nothing is left."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:_SLUG_LENGTH] or "class"


def class_part(index: int, label: str) -> str:
    """The ``CLASS`` part of a name: ``0285-egyptian-cat``."""
    return f"{index:04d}-{slug(label)}"


def localize_tag(config: str, method: str | None = None) -> str:
    """The ``TAG`` of a localisation run: ``localize-default``, ``localize-paper-gradient``."""
    return "-".join(["localize", slug(config), *([slug(method)] if method else [])])


def photo_file(stem: str, tag: str, kind: str, ext: str, class_name: str | None = None) -> str:
    """``STEM.TAG[.CLASS].KIND.EXT``: the name of one file about a photo."""
    return ".".join([stem, slug(tag), *([class_name] if class_name else []), kind, ext])


def key_stem(key: str) -> str:
    """The ``STEM`` of a photo in a batch run: its key (``cats/tabby.jpg``),
    the same in every run that resumes the folder. A key that climbs out of
    its folder (absolute, or with ``..``) gets a name of its own under
    ``_outside/``, made unique by a hash of the key."""
    path = PurePosixPath(key.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        tag = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        path = PurePosixPath("_outside", f"{path.name}-{tag}")
    return str(path)


def maps_file(key: str) -> str:
    """A batch run's ``STEM.npz`` of the photo ``key``: all its maps, every method."""
    return f"{key_stem(key)}.npz"


class UniqueStems:
    """Photo stems distinct within a run (two ``cat.jpg`` in different
    folders become ``cat`` and ``cat-2``; a ``cat-2.jpg`` after them becomes
    ``cat-2-2``), also where case does not count (macOS and Windows disks)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def next(self, source: str | Path) -> str:
        base = Path(source).stem or "image"
        stem, n = base, 1
        while stem.lower() in self._used:
            n += 1
            stem = f"{base}-{n}"
        self._used.add(stem.lower())
        return stem


__all__ = ["UniqueStems", "class_part", "key_stem", "localize_tag", "maps_file", "photo_file", "slug"]
