"""Localisation accuracy of saliency boxes on annotated photos.

Metrics, each over the photos' true classes:
- GT-known: the box from the true class's map has IoU >= 0.5 with a true box;
- top-1 localisation: that, and the top-1 prediction is the true class;
- top-5 localisation error (the paper's metric): no top-5 class is the true
  class with a correct box (the box of a class depends only on its map);
- MaxBoxAcc at IoU 0.3/0.5/0.7 (Choe et al. 2020): the map normalised to
  [0, 1] and thresholded at 0, 0.01, ..., 0.99, the best box of any connected
  component; the best threshold over the data set.
Baselines: the whole image and the centred box covering 70% of each side
(a fixed box has no threshold: its MaxBoxAcc is its box accuracy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .._core.precision import repeatable
from ..localization.boxes import Box, best_iou, centred_box, components, whole_image_box
from ..localization.localize import LocalizationConfig, boxes_for, explain_maps, working_size
from ..models.classifier import Classifier
from .run import Sample, batches

MAXBOX_IOUS = (0.3, 0.5, 0.7)
THRESHOLDS = np.arange(0.0, 1.0, 0.01)


def _box_hits(map_: np.ndarray, truths: Sequence[Box], scale: tuple[float, float]) -> np.ndarray:
    """For each threshold and each IoU in MAXBOX_IOUS: does some component's box hit?"""
    low, high = float(map_.min()), float(map_.max())
    unit = (map_ - low) / (high - low) if high > low else np.zeros_like(map_)
    hits = np.zeros((len(THRESHOLDS), len(MAXBOX_IOUS)), bool)
    sx, sy = scale
    for i, t in enumerate(THRESHOLDS):
        found = components(unit >= t)
        best = max(
            (best_iou((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), truths) for _, b in found), default=0.0
        )
        hits[i] = [best >= d for d in MAXBOX_IOUS]
    return hits


def _summary(name: str, known: list[bool], in_top1: list[bool], in_top5: list[bool]) -> dict[str, object]:
    k, t1, t5 = np.array(known), np.array(in_top1), np.array(in_top5)
    return {
        "config": name,
        "images": len(k),
        "gt_known_loc": float(k.mean()),
        "top1_loc": float((k & t1).mean()),
        "top5_loc_error": float(1 - (k & t5).mean()),
    }


def localization(
    model: Classifier,
    samples: Sequence[Sample],
    configs: Sequence[LocalizationConfig],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    deterministic: bool = False,
) -> list[dict[str, object]]:
    """One row per config and per baseline box (``deterministic``: see
    :func:`deepinside.attribute`)."""
    known: dict[str, list[bool]] = {c.name: [] for c in configs}
    known.update({"whole image": [], "centred box": []})
    maxbox = {c.name: np.zeros((len(THRESHOLDS), len(MAXBOX_IOUS))) for c in configs}
    fixed = {"whole image": np.zeros(len(MAXBOX_IOUS)), "centred box": np.zeros(len(MAXBOX_IOUS))}
    seconds = {c.name: 0.0 for c in configs}
    in_top1: list[bool] = []
    in_top5: list[bool] = []
    for chunk, inputs, placements, targets in batches(model, samples, batch_size):
        scores = model.scores(inputs)
        top5 = scores.topk(min(5, scores.shape[1]), dim=1).indices.cpu()  # a model may have under 5 classes
        in_top1 += [int(top5[i, 0]) == int(targets[i]) for i in range(len(chunk))]
        in_top5 += [int(targets[i]) in top5[i].tolist() for i in range(len(chunk))]
        for s in chunk:
            w, h = s.photo.width, s.photo.height
            for name, box in (("whole image", whole_image_box(w, h)), ("centred box", centred_box(w, h))):
                overlap = best_iou(box, s.boxes)
                known[name].append(overlap >= 0.5)
                fixed[name] += [overlap >= d for d in MAXBOX_IOUS]  # one box: the same at every threshold
        for config in configs:
            start = time.perf_counter()
            with repeatable(deterministic):
                maps = explain_maps(model, inputs, targets[:, None], config)[:, 0]
            for s, placement, m in zip(chunk, placements, maps):
                (found,) = boxes_for(s.photo, placement, m[None], [None], config)  # type: ignore[list-item]
                known[config.name].append(best_iou(found.box, s.boxes) >= 0.5)
            seconds[config.name] += time.perf_counter() - start
            for s, placement, m in zip(chunk, placements, maps):
                w, h = working_size(s.photo.width, s.photo.height, config.work_side)
                on_photo = placement.to_photo(m, size=(w, h)).float().cpu().numpy()
                maxbox[config.name] += _box_hits(on_photo, s.boxes, (s.photo.width / w, s.photo.height / h))
        if progress:
            progress(len(chunk))
    rows = []
    for name, hits in known.items():
        row = _summary(name, hits, in_top1, in_top5)
        best = maxbox[name].max(0) if name in maxbox else fixed[name]
        row.update({f"maxboxacc_{d}": float(v) / len(hits) for d, v in zip(MAXBOX_IOUS, best)})
        if name in seconds:
            row["seconds_per_image"] = seconds[name] / len(hits)
        rows.append(row)
    return rows
