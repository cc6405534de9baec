"""Keep freed memory in the process (the command line and its workers).

glibc gives blocks above its mmap threshold back to the system when they are
freed, and trims the free top of its heap. A render step allocates and frees
the same tens of megabytes every step, so without this each step faults its
memory in again (docs/class-models.md has the measurements). Not done on
import: a library should not change its host process's allocator; Python
users can set ``GLIBC_TUNABLES`` instead (docs/class-models.md).
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest: tensors up to 32 MiB come from the heap
_TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tell glibc to reuse freed memory instead of returning it; False where
    the C library is not glibc (nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
            mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):
        return False
