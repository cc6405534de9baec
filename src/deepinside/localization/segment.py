"""From a saliency map to a foreground mask: the paper's GraphCut and a plain threshold.

Paper (section 3.1): foreground colour model from pixels above the 95%
saliency quantile, background model from those below the 30% quantile,
GraphCut colour segmentation (Boykov & Jolly 2001), largest connected
component. We use OpenCV's GrabCut machinery in two steps, so that the
colour models come from the seeds alone, as in the paper: first its GMMs
(5 components each) are fitted to the seed pixels only; then one graph cut
over the whole photo runs with those models frozen (``GC_EVAL_FREEZE_MODEL``).
Where it departs from the paper, and why:

- The seeds are hard constraints (surely foreground/background); the paper
  does not say whether its seeds were. Hard seeds keep the most salient
  pixels in the object, which the box rule needs.
- The pairwise term is GrabCut's (contrast-sensitive, 8-connected, weight
  50); the paper does not give its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: GrabCut needs some seeds of each kind and a few pixels to work with.
MIN_SIDE = 8

#: GrabCut reads its rectangle only when started from one; ours start from masks.
NO_RECT = (0, 0, 0, 0)


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray  # (H, W) bool
    note: str = ""  # why a fallback rule was used, if one was


def graphcut(
    photo: np.ndarray, saliency_map: np.ndarray, fg_quantile: float = 0.95, bg_quantile: float = 0.30
) -> Segmentation:
    """The paper's segmentation of ``photo`` ``(H, W, 3)`` uint8 RGB from its
    saliency map ``(H, W)``. Falls back to the foreground seeds themselves when
    GrabCut keeps no foreground, and says so in ``note``."""
    h, w = saliency_map.shape
    if min(h, w) < MIN_SIDE:
        return Segmentation(np.ones((h, w), bool), f"image under {MIN_SIDE} px a side: whole image taken")
    if float(saliency_map.max()) <= float(saliency_map.min()):
        return Segmentation(np.ones((h, w), bool), "constant saliency map: whole image taken")
    fg_level, bg_level = np.quantile(saliency_map, [fg_quantile, bg_quantile])
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    seeds[saliency_map <= bg_level] = cv2.GC_BGD
    fg = saliency_map > fg_level
    if not fg.any():
        fg = saliency_map >= fg_level
    seeds[fg] = cv2.GC_FGD
    bgr = np.ascontiguousarray(photo[..., ::-1])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        # 1. Colour models from the seed pixels alone (a one-row image of them).
        bg = seeds == cv2.GC_BGD
        seed_pixels = np.ascontiguousarray(np.concatenate([bgr[fg], bgr[bg]])[None])
        seed_labels = np.concatenate(
            [np.full(int(fg.sum()), cv2.GC_FGD, np.uint8), np.full(int(bg.sum()), cv2.GC_BGD, np.uint8)]
        )[None]
        # GrabCut's k-means starts from the calling thread's OpenCV random
        # state: seeded, the same photo gives the same box on every call.
        cv2.setRNGSeed(0)
        cv2.grabCut(seed_pixels, seed_labels, NO_RECT, bgd, fgd, 0, cv2.GC_INIT_WITH_MASK)
        # 2. One graph cut over the photo with those models fixed.
        cv2.grabCut(bgr, seeds, NO_RECT, bgd, fgd, 1, cv2.GC_EVAL_FREEZE_MODEL)
    except cv2.error:
        return Segmentation(fg, "GrabCut failed on this image: the foreground seeds taken")
    mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if not mask.any():
        return Segmentation(fg, "GrabCut found no foreground: the foreground seeds taken")
    return Segmentation(mask)


def threshold(saliency_map: np.ndarray, fraction: float) -> Segmentation:
    """Pixels above ``fraction`` of the map's maximum (above its minimum)."""
    low, high = float(saliency_map.min()), float(saliency_map.max())
    if high <= low:
        return Segmentation(np.ones(saliency_map.shape, bool), "constant saliency map: whole image taken")
    return Segmentation(saliency_map >= low + fraction * (high - low))


def otsu_cut(saliency_map: np.ndarray) -> Segmentation:
    """Pixels at or above Otsu's threshold of the map (:func:`otsu_level` of
    its range). A map made nearly two-level (object and background, as the
    affinity walk leaves it) is cut between its levels, wherever they lie."""
    low, high = float(saliency_map.min()), float(saliency_map.max())
    if high <= low:
        return Segmentation(np.ones(saliency_map.shape, bool), "constant saliency map: whole image taken")
    values = (saliency_map - low) / (high - low)
    return Segmentation(values >= otsu_level(values))


def otsu_level(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` in [0, 1]: the level, in ``bins`` steps,
    that splits them into two classes of the largest between-class variance."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = counts / max(counts.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    below, below_sum = np.cumsum(p), np.cumsum(p * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (below_sum[-1] * below - below_sum) ** 2 / (below * (1 - below))
    return float(edges[int(np.argmax(np.nan_to_num(between))) + 1])


def above_mean(saliency_map: np.ndarray) -> Segmentation:
    """Pixels at or above the map's own mean: a threshold each map sets itself,
    with no fraction to choose (a map that is high over a large object has a
    high mean too, one with a small object a low one)."""
    low, high = float(saliency_map.min()), float(saliency_map.max())
    if high <= low:
        return Segmentation(np.ones(saliency_map.shape, bool), "constant saliency map: whole image taken")
    return Segmentation(saliency_map >= float(saliency_map.mean()))
