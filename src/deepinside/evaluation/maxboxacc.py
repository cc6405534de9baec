"""MaxBoxAccV2 (Choe et al. 2020, "Evaluating Weakly Supervised Object
Localization Methods Right"), by the protocol of their benchmark code
(clovaai/wsolevaluation), so that our numbers sit next to theirs:

- the map over the whole photo is resized to 224 x 224 (bicubic) and scaled
  to [0, 1] by its minimum and maximum (a constant map becomes all zeros);
  the ground-truth boxes are scaled to the same 224 x 224 grid, each
  coordinate rounded down;
- the map is quantised to 8 bits, and at each threshold t in 0, 0.01, ...,
  0.99 the pixels above ``int(t * max)`` are kept;
- every contour of the kept pixels (outer ones and the edges of holes) gives
  a box ``(x, y, x + w, y + h)`` clipped to 223; no contour gives the box
  (0, 0, 0, 0);
- IoU counts pixels inclusively (a box from x0 to x1 is x1 - x0 + 1 wide);
  a photo is a hit at an IoU level when any of its boxes reaches that IoU
  with any of its ground-truth boxes;
- for each IoU level 0.3, 0.5, 0.7 the accuracy at the best threshold over
  the data set; MaxBoxAccV2 is the mean of the three.

The benchmark's training code defaults to a finer threshold step (0.001);
its evaluation instructions and this module use 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..localization.boxes import Box

SIDE = 224
IOUS = (0.3, 0.5, 0.7)
THRESHOLDS = np.arange(0.0, 1.0, 0.01)

IntBox = tuple[int, int, int, int]


def benchmark_scoremap(map_: np.ndarray) -> np.ndarray:
    """A map ``(H, W)`` over the whole photo as the benchmark scores it:
    224 x 224, in [0, 1] (zeros where the map is constant or not finite)."""
    map_ = np.asarray(map_, np.float32)
    # Checked before the resize too: bicubic round-off would turn a constant map into noise.
    if not np.isfinite(map_).all() or map_.min() == map_.max():
        return np.zeros((SIDE, SIDE), np.float32)
    resized = cv2.resize(map_, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    if resized.min() == resized.max():
        return np.zeros((SIDE, SIDE), np.float32)
    resized -= resized.min()
    return resized / resized.max()


def benchmark_box(box: Box, width: int, height: int) -> IntBox:
    """A box in the photo's pixels on the 224 x 224 grid, rounded down."""
    sx, sy = SIDE / width, SIDE / height
    return int(box[0] * sx), int(box[1] * sy), int(box[2] * sx), int(box[3] * sy)


def threshold_boxes(scoremap: np.ndarray, threshold: float) -> np.ndarray:
    """``(n, 4)``: the box of every contour of the map's pixels above ``threshold``."""
    quantised = (scoremap * 255).astype(np.uint8)
    kept = (quantised > int(threshold * quantised.max())).astype(np.uint8)
    contours, _ = cv2.findContours(kept, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((1, 4), np.int64)
    height, width = scoremap.shape
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append((x, y, min(x + w, width - 1), min(y + h, height - 1)))
    return np.array(boxes, np.int64)


def inclusive_iou(boxes: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """``(n, m)`` IoU of boxes ``(n, 4)`` with truths ``(m, 4)``, pixels counted inclusively."""
    a, b = boxes[:, None, :].astype(np.float64), truths[None, :, :].astype(np.float64)
    w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def photo_hits(scoremap: np.ndarray, truths: Sequence[IntBox]) -> np.ndarray:
    """``(thresholds, IoU levels)``: does some box of the map reach the IoU with some truth?"""
    grid = np.array(truths, np.int64).reshape(-1, 4)
    hits = np.zeros((len(THRESHOLDS), len(IOUS)), bool)
    if not len(grid):
        return hits
    for i, t in enumerate(THRESHOLDS):
        best = inclusive_iou(threshold_boxes(scoremap, t), grid).max()
        hits[i] = [best >= level for level in IOUS]
    return hits


def box_scoremap(box: Box, width: int, height: int) -> np.ndarray:
    """The scoremap of a fixed box (a baseline): 1 inside, 0 outside, on the
    224 x 224 grid, so that every threshold gives that box."""
    x0, y0, x1, y1 = benchmark_box(box, width, height)
    scoremap = np.zeros((SIDE, SIDE), np.float32)
    scoremap[y0:y1, x0:x1] = 1.0
    return scoremap


class MaxBoxAccV2:
    """Accumulates photos; :meth:`result` gives MaxBoxAcc per IoU level and their mean."""

    def __init__(self) -> None:
        self.hits = np.zeros((len(THRESHOLDS), len(IOUS)))
        self.photos = 0

    def add_map(self, map_: np.ndarray, truths: Sequence[Box], width: int, height: int) -> None:
        """One photo: its map over the whole photo and its boxes in the photo's
        ``width`` x ``height`` pixels."""
        self.add_scoremap(benchmark_scoremap(map_), [benchmark_box(b, width, height) for b in truths])

    def add_scoremap(self, scoremap: np.ndarray, truths: Sequence[IntBox]) -> None:
        self.hits += photo_hits(scoremap, truths)
        self.photos += 1

    def result(self) -> dict[str, float]:
        """``maxboxacc_0.3`` ... as fractions, and ``maxboxacc_v2``, their mean."""
        best = self.hits.max(0) / max(self.photos, 1)
        row = {f"maxboxacc_{level}": float(v) for level, v in zip(IOUS, best)}
        row["maxboxacc_v2"] = float(best.mean())
        return row
