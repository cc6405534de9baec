"""Localisation accuracy of saliency boxes on annotated photos.

Metrics, each over the photos' true classes:
- GT-known: the box from the true class's map has IoU >= 0.5 with a true box;
- top-1 localisation: that, and the top-1 prediction is the true class;
- top-5 localisation error (the paper's metric): no top-5 class is the true
  class with a correct box (the box of a class depends only on its map);
- MaxBoxAcc at IoU 0.3/0.5/0.7 and MaxBoxAccV2, their mean (Choe et al.
  2020), by their benchmark's protocol (see :mod:`.maxboxacc`).
Baselines: the whole image and the centred box covering 70% of each side
(a fixed box has no threshold: its MaxBoxAcc is its box accuracy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ..localization import LocalizationConfig, centred_box, config_for, localize_inputs, whole_image_box
from ..localization.boxes import best_iou
from ..models.classifier import Classifier
from .maxboxacc import MaxBoxAccV2, benchmark_box, box_scoremap
from .run import Sample, batches


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
    progress: Callable[[int], object] | None = None,
    deterministic: bool = False,
) -> list[dict[str, object]]:
    """One row per config and per baseline box (``deterministic``: see
    :func:`deepinside.attribute`)."""
    configs = [config_for(model, c) for c in configs]
    known: dict[str, list[bool]] = {c.name: [] for c in configs}
    known.update({"whole image": [], "centred box": []})
    maxbox = {name: MaxBoxAccV2() for name in known}
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
                truths = [benchmark_box(b, w, h) for b in s.boxes]
                maxbox[name].add_scoremap(box_scoremap(box, w, h), truths)
        classes = model.predictions_of(scores, targets[:, None])
        photos = [s.photo for s in chunk]
        for config in configs:
            start = time.perf_counter()
            found = localize_inputs(model, photos, inputs, placements, classes, config, deterministic)
            for s, (one,) in zip(chunk, found):
                known[config.name].append(best_iou(one.box, s.boxes) >= 0.5)
            seconds[config.name] += time.perf_counter() - start
            for s, (one,) in zip(chunk, found):
                # The map the box was cut from, on the photo at the working size.
                maxbox[config.name].add_map(one.working_saliency, s.boxes, s.photo.width, s.photo.height)
        if progress:
            progress(len(chunk))
    rows = []
    for name, hits in known.items():
        row = _summary(name, hits, in_top1, in_top5)
        row.update(maxbox[name].result())
        if name in seconds:
            row["seconds_per_image"] = seconds[name] / len(hits)
        rows.append(row)
    return rows
