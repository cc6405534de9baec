"""Writing result files so that a crash never leaves a half-written one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(path: str | os.PathLike[str], dump: Callable[[IO[bytes]], None]) -> Path:
    with atomic_write(path) as handle:
        dump(handle)
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return _write(path, lambda h: h.write(text.encode("utf-8")))


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    return _write(path, lambda h: np.save(h, array, allow_pickle=False))


def write_png(path: str | os.PathLike[str], image: Image.Image) -> Path:
    return _write(path, lambda h: image.save(h, format="PNG"))
