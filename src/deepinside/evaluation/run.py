"""Evaluate several attribution methods on a set of photos, one table per metric.

Shared by ``deepinside evaluate`` and the benchmarks: photos are read once,
maps are computed in batches, and each metric gets one row per method plus
its baseline (random order for deletion/insertion, the image centre for the
pointing game).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..attribution import attribute
from ..attribution.methods import Method, Reduction
from ..errors import ImageError
from ..localization.boxes import Box
from ..models.classifier import Classifier
from ..models.preprocessing import Placement
from .annotations import Annotated
from .faithfulness import deletion_insertion, random_maps
from .pointing import centre_baseline, original_scale, pointing_game
from .sanity import FAIL_ABOVE, SanityResult, cascading_randomization

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Sample:
    source: str
    photo: Image.Image
    class_index: int | None = None  # None: explain the model's top-1 class
    boxes: tuple[Box, ...] = ()
    original_size: tuple[int, int] | None = None  # (width, height) before the photo was resized


def batches(
    model: Classifier, samples: Sequence[Sample], batch_size: int
) -> Iterator[tuple[list[Sample], torch.Tensor, list[Placement], torch.Tensor]]:
    """Batches of ``(samples, inputs, placements, targets)``; a sample's target
    is its class, or the model's top-1 class where it has none."""
    for lo in range(0, len(samples), batch_size):
        chunk = list(samples[lo : lo + batch_size])
        inputs, placements = model.prepare([s.photo for s in chunk])
        if all(s.class_index is not None for s in chunk):
            targets = torch.tensor([s.class_index for s in chunk])
        else:
            top = model.scores(inputs).argmax(1).cpu()
            targets = torch.tensor(
                [top[i] if s.class_index is None else s.class_index for i, s in enumerate(chunk)]
            )
        yield chunk, inputs, placements, targets


def faithfulness(
    model: Classifier,
    samples: Sequence[Sample],
    methods: Sequence[Method],
    steps: int = 50,
    batch_size: int = 8,
    progress: Progress | None = None,
    reduce: Reduction = "max-abs",
    deterministic: bool = False,
) -> list[dict[str, object]]:
    """Mean deletion and insertion AUC per method, and for a random order
    (``deterministic``: see :func:`deepinside.attribute`)."""
    totals: dict[str, list[torch.Tensor]] = {m.name: [] for m in methods}
    totals["random"] = []
    for chunk, inputs, _, targets in batches(model, samples, batch_size):
        maps = {
            m.name: attribute(model, inputs, targets, m, reduce, deterministic=deterministic).map
            for m in methods
        }
        shape = inputs.shape[:1] + inputs.shape[2:]
        maps["random"] = random_maps(shape, seed=len(totals["random"]), device=inputs.device)
        for name, m in maps.items():
            curves = deletion_insertion(model, inputs, m, targets, steps=steps, deterministic=deterministic)
            totals[name].append(torch.stack([curves.deletion_auc, curves.insertion_auc], 1).cpu())
            if progress:
                progress(len(chunk))
    rows = []
    for name, parts in totals.items():
        both = torch.cat(parts)
        rows.append(
            {
                "method": name,
                "images": len(both),
                "deletion_auc": float(both[:, 0].mean()),
                "insertion_auc": float(both[:, 1].mean()),
            }
        )
    return rows


def pointing(
    model: Classifier,
    samples: Sequence[Sample],
    methods: Sequence[Method],
    tolerance: float = 15.0,
    batch_size: int = 8,
    progress: Progress | None = None,
    reduce: Reduction = "max-abs",
    deterministic: bool = False,
) -> list[dict[str, object]]:
    """Pointing-game accuracy per method on the photos' pixels, and for the centre.
    ``tolerance`` is in pixels of the original photo where a sample knows its
    ``original_size``, else of the photo as stored; each row's
    ``tolerance_of`` says which (``original``, ``stored`` or ``mixed``).
    ``deterministic``: see :func:`deepinside.attribute`."""
    hits: dict[str, list[bool]] = {m.name: [] for m in methods}
    centre: list[bool] = []
    for chunk, inputs, placements, targets in batches(model, samples, batch_size):
        scales = [original_scale(s.photo.width, s.photo.height, s.original_size) for s in chunk]
        for m in methods:
            maps = attribute(model, inputs, targets, m, reduce, deterministic=deterministic).map
            for s, placement, saliency_map, scale in zip(chunk, placements, maps, scales):
                on_photo = placement.to_photo(saliency_map).cpu().numpy()
                hits[m.name].append(pointing_game(on_photo, s.boxes, tolerance, scale))
            if progress:
                progress(len(chunk))
        centre += [
            centre_baseline(s.photo.width, s.photo.height, s.boxes, tolerance, scale)
            for s, scale in zip(chunk, scales)
        ]
    known = sum(s.original_size is not None for s in samples)
    of = "original" if known == len(samples) else "stored" if known == 0 else "mixed"
    hits["centre"] = centre
    return [
        {
            "method": name,
            "images": len(h),
            "accuracy": float(np.mean(h)),
            "tolerance_px": tolerance,
            "tolerance_of": of,
        }
        for name, h in hits.items()
    ]


def sanity(
    model: Classifier,
    samples: Sequence[Sample],
    methods: Sequence[Method],
    checkpoints: int = 8,
    progress: Progress | None = None,
    reduce: Reduction = "max-abs",
    batch_size: int = 8,
    deterministic: bool = False,
) -> list[dict[str, object]]:
    """Cascading randomisation per method: rank correlation and SSIM with the
    original map after each checkpoint, and the verdict. Photos go batch by
    batch; each batch sees the same randomised layers (the cascade is seeded).
    ``deterministic``: see :func:`deepinside.attribute`."""
    parts: dict[str, list[SanityResult]] = {m.name: [] for m in methods}
    for chunk, inputs, _, targets in batches(model, samples, batch_size):
        for m in methods:
            result = cascading_randomization(
                model, inputs, targets, m, reduce, checkpoints=checkpoints, deterministic=deterministic
            )
            parts[m.name].append(result)
            if progress:
                progress(len(chunk))
    rows = []
    for m in methods:
        done = parts[m.name]
        result = SanityResult(
            done[0].method,
            done[0].layers,
            torch.cat([r.spearman for r in done], 1),
            torch.cat([r.ssim for r in done], 1),
        )
        rows.append(
            {
                "method": m.name,
                "images": result.spearman.shape[1],
                "layers": result.layers,
                "spearman": result.spearman.mean(1).tolist(),
                "ssim": result.ssim.mean(1).tolist(),
                "final_spearman": result.final_spearman,
                "final_ssim": float(result.ssim[-1].mean()),
                "survival": result.survival,
                "verdict": "pass"
                if result.passed
                else f"FAIL: map survives randomisation (mean rank corr > {FAIL_ABOVE})",
            }
        )
    return rows


def samples_from(
    paths: Sequence[Path],
    load: Callable[[Path], Image.Image],
    entries: Sequence[Annotated] | None,
    on_skip: Callable[[ImageError], None] | None = None,
) -> list[Sample]:
    """Samples for photo paths, with class and boxes from annotation entries
    when given. A photo that cannot be read is left out (and given to
    ``on_skip``; without it, the error is raised)."""
    found: list[tuple[Path, int | None, tuple[Box, ...], tuple[int, int] | None]]
    if entries is None:
        found = [(p, None, (), None) for p in paths]
    else:
        found = [(e.image, e.class_index, e.boxes, e.original_size) for e in entries]
    samples = []
    for path, class_index, boxes, original_size in found:
        try:
            samples.append(Sample(str(path), load(path), class_index, boxes, original_size))
        except ImageError as err:
            if on_skip is None:
                raise
            on_skip(err)
    return samples
