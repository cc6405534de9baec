"""Writing result files so that a crash never leaves a half-written one."""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

#: Ends the name of a file being written (``.NAME.XXXX.tmp`` beside ``NAME``).
TEMPORARY_SUFFIX = ".tmp"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it.
_FILE_MODE = 0o666 & ~_read_umask()


def remove_temporary_files(folder: str | os.PathLike[str], older_than: float = 600.0) -> int:
    """Delete what writes cut short by a killed process left in ``folder``
    (only files named as :func:`atomic_write` names them, and only those
    untouched for ``older_than`` seconds: another process may be writing
    the others right now); return how many."""
    cutoff = time.time() - older_than
    removed = 0
    for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # renamed into place or removed meanwhile
            pass
    return removed


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(path: str | os.PathLike[str], dump: Callable[[IO[bytes]], object]) -> Path:
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


def write_npz(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    compress: bool = False,
    durable: bool = False,
) -> Path:
    """``arrays`` as one ``.npz`` (``np.load(path)[name]`` reads each): the one
    writer of every ``.npz`` deepinside makes. Members carry no time stamps,
    so the same arrays give the same bytes; ``compress`` deflates them
    (stored otherwise, see docs/output-files.md for what each costs);
    ``durable`` flushes the file to disk before it is renamed into place."""
    kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path) as handle:
        with zipfile.ZipFile(handle, "w", kind) as archive:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, buffer.getvalue(), compress_type=kind)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)
