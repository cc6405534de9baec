"""Open any photo a user may have as an 8-bit RGB image, or say clearly why not.

Handles greyscale, palette, RGBA (composited on white), 16-bit, CMYK and
EXIF-rotated files, and refuses truncated, empty and oversized ones with one
line naming the file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

#: The suffixes (in any case) a folder scan takes; files named on the command
#: line are always tried whatever their suffix.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)

#: Default refusal size, Pillow's own decompression-bomb threshold (about 89 MP).
DEFAULT_MAX_PIXELS = 89_478_485

# Pillow's limit is a module global: opening with our own limit switches it off
# for the duration, one thread at a time.
_PILLOW_LIMIT = threading.Lock()


def load_photo(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read ``path`` as an upright 8-bit RGB image.

    Raises :class:`ImageError` with a one-line reason for a missing, empty,
    truncated, unreadable or oversized file.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with _PILLOW_LIMIT, warnings.catch_warnings():
            # Pillow's size limit and its warnings (decompression bombs, odd
            # metadata) are replaced by our own limit: the file opens or is
            # refused with one line.
            warnings.simplefilter("ignore")
            pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as image:
                    _check_size(path, image.size, max_pixels)
                    image.load()
                    return to_rgb(ImageOps.exif_transpose(image))
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image that can be read (unknown format)") from None
    except PermissionError:
        raise ImageError(f"{path}: cannot be read (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: damaged or truncated image ({err})") from None


def _check_size(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageError(
            f"{path}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.0f}; raise it with --max-pixels if you trust this file"
        )
    if w < 1 or h < 1:
        raise ImageError(f"{path}: image has no pixels ({w}x{h})")


def named(photo: Image.Image, name: str) -> Image.Image:
    """``photo`` carrying ``name`` as its ``filename``, the name output files are
    made from, for a photo that was not opened from a file under that name."""
    photo.filename = name  # type: ignore[attr-defined]  # Pillow's stubs declare filename on opened files only
    return photo


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, keeping the full tonal range."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_rgb(image)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale: scale the file's range to 0..255 (Pillow's
    own conversion clips everything above 255 to white)."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        top = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    else:
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named directly, and the image files found under folders (sorted,
    recursive, by :data:`IMAGE_SUFFIXES`; hidden files and folders left out).
    A folder also holds code, notes and results: reporting each as an
    unreadable photo would bury the photos that are."""
    for p in map(Path, paths):
        if not p.is_dir():
            yield p
            continue
        yield from sorted(
            f
            for f in p.rglob("*")
            if f.suffix.lower() in IMAGE_SUFFIXES
            and f.is_file()
            and not any(part.startswith(".") for part in f.relative_to(p).parts)
        )
