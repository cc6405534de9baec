"""Photos decoded ahead of the model: workers (processes, or threads) read,
decode and preprocess while the model works on the batch before, results come
back in input order, and at most a window of them is in flight however long
the list, so memory stays flat for a million photos as for ten.

Every loop over photos goes through :func:`read_photos` (directly, or
through :func:`deepinside.explain.read_batches`), so there is one reading
path: the safe reader of :mod:`deepinside.io.photos`, in or out of process
(which a single uploaded file or an evaluation sample also uses directly).
A bad file never stops the others: its reason comes back in its place, and a
caller that wants all or nothing asks each :class:`DecodedPhoto` for
:meth:`~DecodedPhoto.checked`.

The model's preprocessing comes in as a plain callable (:data:`Prepare`), so
reading knows nothing of models.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar, Union, overload

import numpy as np
from PIL import Image

from ..errors import DeepInsideError, ImageError
from .photos import DEFAULT_MAX_PIXELS, load_photo, to_rgb

PhotoItem = Union[str, "os.PathLike[str]", Image.Image]

#: Where a model input lies in its photo, as the preprocessing describes it.
P = TypeVar("P")


class ArrayLike(Protocol):
    """A model input that gives its values as a NumPy array (a CPU tensor does)."""

    def numpy(self) -> np.ndarray: ...


#: A preprocessing: a photo to the model input ``(C, H, W)`` and its placement.
Prepare = Callable[[Image.Image], tuple[ArrayLike, P]]


@dataclass
class DecodedPhoto(Generic[P]):
    """One photo as read: the picture, or why it could not be read.

    ``input`` is the model input ``(3, H, W)`` float32 and ``placement`` where
    it lies in the photo, when :func:`read_photos` was given a preprocessing.
    """

    source: str
    photo: Image.Image | None = None
    input: np.ndarray | None = None
    placement: P | None = None
    sha256: str = ""  # of the file's bytes, when asked for
    size: int = 0  # bytes of the file
    error: str = ""
    seconds: float = 0.0  # reading, decoding and preprocessing

    @property
    def ok(self) -> bool:
        return not self.error

    def checked(self) -> Image.Image:
        """The photo, or :class:`~deepinside.errors.ImageError` with the
        one-line reason it could not be read (for all-or-nothing callers)."""
        if self.photo is None:
            raise ImageError(self.error or f"{self.source}: not read")
        return self.photo


@overload
def read_photos(
    items: Iterable[PhotoItem],
    max_pixels: int = ...,
    workers: int = ...,
    *,
    preprocessing: None = None,
    hash_files: bool = ...,
    ahead: int | None = ...,
    threads: bool = ...,
) -> Generator[DecodedPhoto[None]]: ...


@overload
def read_photos(
    items: Iterable[PhotoItem],
    max_pixels: int = ...,
    workers: int = ...,
    *,
    preprocessing: Prepare[P],
    hash_files: bool = ...,
    ahead: int | None = ...,
    threads: bool = ...,
) -> Generator[DecodedPhoto[P]]: ...


def read_photos(
    items: Iterable[PhotoItem],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 0,
    *,
    preprocessing: Prepare[P] | None = None,
    hash_files: bool = False,
    ahead: int | None = None,
    threads: bool = False,
) -> Generator[DecodedPhoto[P]]:
    """Each item (a path or a PIL image) read as a :class:`DecodedPhoto`, in
    input order. A file that cannot be read is a :class:`DecodedPhoto` with
    its one-line ``error``, never an exception, and the others are still read;
    an item that is neither a path nor an image is a caller's mistake and
    raises :class:`~deepinside.errors.DeepInsideError`.

    ``workers`` processes decode files in parallel (0: here, one by one), at
    most ``ahead`` photos in flight (default ``32 * workers``). Images already
    in memory are converted here. ``hash_files`` adds each file's SHA-256.
    ``preprocessing`` also makes each photo's model input and placement.

    ``threads``: the workers are threads of this process. Pillow decodes and
    resamples without the GIL, and a thread starts at once where a process
    first imports torch (see docs/batch.md) and sends each photo back pickled.
    """
    if isinstance(items, (str, os.PathLike, Image.Image)):
        raise DeepInsideError("give a list of photos (PIL images or paths), not a single one")
    read = partial(decode_photo, max_pixels=max_pixels, preprocessing=preprocessing, hash_file=hash_files)
    if workers <= 0:
        yield from map(read, _photo_items(items))
        return
    yield from _ordered_in_pool(_photo_items(items), read, _pool(workers, threads), ahead or 32 * workers)


def _photo_items(items: Iterable[object]) -> Iterator[PhotoItem]:
    for item in items:
        if not isinstance(item, (str, os.PathLike, Image.Image)):
            raise DeepInsideError(f"a photo is a PIL image or a file path, got a {type(item).__name__}")
        yield item


def decode_photo(
    item: PhotoItem,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    preprocessing: Prepare[P] | None = None,
    hash_file: bool = False,
) -> DecodedPhoto[P]:
    """Read one photo (never raises for a bad file: the reason is in ``error``)."""
    start = time.perf_counter()
    found: DecodedPhoto[P]
    if isinstance(item, Image.Image):
        found = DecodedPhoto(getattr(item, "filename", "") or "<image>", to_rgb(item))
    else:
        found = DecodedPhoto(str(item))
        try:
            found.photo = load_photo(item, max_pixels)
            found.size = os.path.getsize(item)
            if hash_file:
                found.sha256 = file_sha256(item)
        except ImageError as err:
            found.error = str(err)
        except OSError as err:  # vanished or unreadable between the decode and the hash
            found.error = f"{item}: cannot be read ({err.strerror or err})"
    if found.photo is not None and not found.error and preprocessing is not None:
        tensor, found.placement = preprocessing(found.photo)
        found.input = tensor.numpy()
    if found.error:
        found.photo = None
    found.seconds = time.perf_counter() - start
    return found


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pool(workers: int, threads: bool) -> cf.Executor:
    if threads:
        return cf.ThreadPoolExecutor(workers, thread_name_prefix="deepinside-read")
    # Spawned, not forked: a fork of a process whose torch already runs
    # threads can hang in the child.
    return cf.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_reader
    )


def _ordered_in_pool(
    items: Iterable[PhotoItem], read: Callable[[PhotoItem], DecodedPhoto[P]], pool: cf.Executor, ahead: int
) -> Iterator[DecodedPhoto[P]]:
    pending: deque[cf.Future[DecodedPhoto[P]] | DecodedPhoto[P]] = deque()
    try:
        for item in items:
            # Pictures already in memory are not worth a trip to another process.
            pending.append(read(item) if isinstance(item, Image.Image) else pool.submit(read, item))
            if len(pending) >= ahead:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    except BrokenProcessPool:
        raise DeepInsideError(
            "a photo-reading process died (out of memory?): run again with fewer --workers"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(entry: cf.Future[DecodedPhoto[P]] | DecodedPhoto[P]) -> DecodedPhoto[P]:
    return entry if isinstance(entry, DecodedPhoto) else entry.result()


def _start_reader() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    import torch

    torch.set_num_threads(1)  # many readers, each one thread: the model keeps the cores it was given


__all__ = ["DecodedPhoto", "Prepare", "decode_photo", "file_sha256", "read_photos"]
