"""Boxes: ``(x0, y0, x1, y1)`` floats in pixels, x right, y down, x1/y1 exclusive."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def best_iou(box: Box, truths: Sequence[Box]) -> float:
    return max((iou(box, t) for t in truths), default=0.0)


def components(mask: np.ndarray) -> list[tuple[int, Box]]:
    """Connected foreground components (8-connected) as ``(area, box)``, largest first."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    found = [
        (int(area), (float(x), float(y), float(x + w), float(y + h))) for x, y, w, h, area in stats[1:count]
    ]
    return sorted(found, key=lambda c: -c[0])


def largest_component_box(mask: np.ndarray) -> Box | None:
    """The bounding box of the largest connected component, or None if the mask is empty."""
    found = components(mask)
    return found[0][1] if found else None


def union_box(mask: np.ndarray, min_fraction: float = 0.0) -> Box | None:
    """The box around all components holding at least ``min_fraction`` of the
    largest one's area, or None if the mask is empty."""
    found = components(mask)
    if not found:
        return None
    kept = [box for area, box in found if area >= min_fraction * found[0][0]]
    return (
        min(b[0] for b in kept),
        min(b[1] for b in kept),
        max(b[2] for b in kept),
        max(b[3] for b in kept),
    )


def whole_image_box(width: int, height: int) -> Box:
    return (0.0, 0.0, float(width), float(height))


def centred_box(width: int, height: int, fraction: float = 0.7) -> Box:
    """The centred box covering ``fraction`` of each side."""
    mx, my = width * (1 - fraction) / 2, height * (1 - fraction) / 2
    return (mx, my, width - mx, height - my)


def scale_box(box: Box, sx: float, sy: float) -> Box:
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
