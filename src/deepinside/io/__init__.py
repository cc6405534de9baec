"""Reading photos and writing results: files in, files out, nothing half-written."""

from .files import atomic_write, write_json, write_npy, write_npz, write_png
from .photos import IMAGE_SUFFIXES, expand_paths, load_photo, named, to_rgb

__all__ = [
    "IMAGE_SUFFIXES",
    "atomic_write",
    "expand_paths",
    "load_photo",
    "named",
    "to_rgb",
    "write_json",
    "write_npy",
    "write_npz",
    "write_png",
]
