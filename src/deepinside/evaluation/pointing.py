"""The pointing game (Zhang et al. 2016): does the map's maximum fall on the object?

The tolerance is in pixels of the original photo (Zhang et al. 15 px; TorchRay
the same): for a photo stored smaller than its original, the distance from the
point to a box is measured after scaling each axis back to the original's
pixels (``scale``: original pixels per stored pixel, along x and along y).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..localization.boxes import Box


def max_point(saliency_map: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` of the centre of the map's largest pixel (first on ties)."""
    y, x = np.unravel_index(int(np.argmax(saliency_map)), saliency_map.shape)
    return x + 0.5, y + 0.5


Scale = tuple[float, float]


def hits(
    point: tuple[float, float], boxes: Sequence[Box], tolerance: float = 15.0, scale: Scale = (1.0, 1.0)
) -> bool:
    """True when ``point`` lies within ``tolerance`` original pixels of any box."""
    x, y = point
    sx, sy = scale
    for x0, y0, x1, y1 in boxes:
        dx = max(x0 - x, 0.0, x - x1) * sx
        dy = max(y0 - y, 0.0, y - y1) * sy
        if dx * dx + dy * dy <= tolerance * tolerance:
            return True
    return False


def pointing_game(
    saliency_map: np.ndarray, boxes: Sequence[Box], tolerance: float = 15.0, scale: Scale = (1.0, 1.0)
) -> bool:
    """One trial: the map on the photo's pixels ``(H, W)`` and the class's boxes."""
    return hits(max_point(saliency_map), boxes, tolerance, scale)


def centre_baseline(
    width: int, height: int, boxes: Sequence[Box], tolerance: float = 15.0, scale: Scale = (1.0, 1.0)
) -> bool:
    """The trial for a map that always points at the image centre."""
    return hits((width / 2, height / 2), boxes, tolerance, scale)


def original_scale(width: int, height: int, original_size: tuple[int, int] | None) -> Scale:
    """Original pixels per stored pixel along x and y (1, 1 when the original is unknown)."""
    if original_size is None:
        return 1.0, 1.0
    return original_size[0] / width, original_size[1] / height
