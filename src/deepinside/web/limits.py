"""What one request may ask of the server: a shared server must refuse the
upload or the job that would take it down, with a line saying why."""

from __future__ import annotations

from dataclasses import dataclass

from ..io.photos import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Limits:
    """Caps for uploads and jobs.

    Attributes:
        max_upload_mb: largest upload, in megabytes (10**6 bytes).
        max_pixels: largest photo, in pixels (decompression-bomb guard).
        max_classes: classes in one class-visualisation job (one batch).
        max_steps: steps of one class-visualisation job.
        max_size: side of a class visualisation, in pixels.
        max_samples: the most of any method option that sets how many passes a
            map costs (those declaring a cheap setting: SmoothGrad's noisy
            copies, integrated gradients' steps).
        max_compare_photos: photos in one comparison.
    """

    max_upload_mb: float = 10.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_classes: int = 8
    max_steps: int = 1000
    max_size: int = 512
    max_samples: int = 200
    max_compare_photos: int = 8

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)
