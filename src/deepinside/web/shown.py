"""Pictures the page shows, as files written once each.

The framework saves a picture handed over as an image object under a name
made from its content, and rewrites that file in place each time the same
picture is sent again: a browser fetching it meanwhile gets fewer bytes than
the length the server declared. A file handed over by path is copied once
into the framework's cache under a temporary name and renamed into place, so
the page only ever gets files: each written atomically, under a name of its
own, and never written again.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

from PIL import Image

from ..io.files import write_png
from ..io.names import slug


class PictureFiles:
    """The pictures of one request, in its result folder.

    ``file(key, caption, make)`` writes ``make()`` the first time ``key`` is
    asked for, and gives the same file again afterwards while it exists.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._written: dict[Hashable, str] = {}

    def file(self, key: Hashable, name: str, make: Callable[[], Image.Image]) -> str:
        with self._lock:
            found = self._written.get(key)
            if found is not None and Path(found).is_file():
                return found
            path = self._fresh_path(name)
        written = str(write_png(path, make()))
        with self._lock:
            self._written[key] = written
        return written

    def new(self, name: str, picture: Image.Image) -> str:
        """Write ``picture`` under a fresh name (a picture shown once)."""
        with self._lock:
            path = self._fresh_path(name)
        return str(write_png(path, picture))

    def _fresh_path(self, name: str) -> Path:
        """A name no file of this request has had (call with the lock held)."""
        return self.folder / f"shown-{next(self._numbers):04d}-{slug(name) or 'picture'}.png"
