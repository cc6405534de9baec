"""Localisation as a pipeline: ``maps -> refine -> cut -> box``.

The first two steps need the model (:mod:`.maps`); :func:`cut` and
:func:`box_of` work on one map at the working size, in the photo's frame.
:func:`localize_inputs` runs them all for prepared inputs and the classes
to box: the one entry point of the command line, the web app, batch runs
and the evaluation. Batch runs call its two halves apart
(:func:`~.maps.localization_maps` on the model's thread, :func:`boxes_for`
beside the file writing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from .._core.precision import repeatable
from ..io.photos import to_rgb
from ..models.classifier import Classifier, Prediction
from ..models.preprocessing import Placement
from .boxes import Box, largest_component_box, scale_box, union_box, whole_image_box
from .config import LocalizationConfig
from .maps import localization_maps
from .segment import Segmentation, above_mean, graphcut, otsu_cut, threshold

#: Spread of the centre prior, as a fraction of each side.
CENTRE_PRIOR_SIGMA = 0.25


def cut(pixels: np.ndarray, saliency_map: np.ndarray, config: LocalizationConfig) -> Segmentation:
    """Step ``cut``: the foreground of a map ``(h, w)`` float32 over the photo's
    ``pixels`` ``(h, w, 3)`` uint8 RGB at the working size, after the config's
    centre prior and smoothing, by its segmentation rule."""
    if config.centre_prior > 0:
        saliency_map = with_centre_prior(saliency_map, config.centre_prior)
    if config.smoothing > 0:
        sigma = config.smoothing * min(saliency_map.shape)
        saliency_map = cv2.GaussianBlur(saliency_map, (0, 0), sigma)
    if config.segmentation == "graphcut":
        return graphcut(pixels, saliency_map, config.fg_quantile, config.bg_quantile)
    if config.segmentation == "mean":
        return above_mean(saliency_map)
    if config.segmentation == "otsu":
        return otsu_cut(saliency_map)
    return threshold(saliency_map, config.threshold)


def with_centre_prior(saliency_map: np.ndarray, weight: float) -> np.ndarray:
    """The map over its peak mixed with a centred Gaussian, ``weight`` of the latter."""
    h, w = saliency_map.shape
    ys, xs = np.mgrid[0:h, 0:w]
    prior = np.exp(-(((xs + 0.5) / w - 0.5) ** 2 + ((ys + 0.5) / h - 0.5) ** 2) / (2 * CENTRE_PRIOR_SIGMA**2))
    top = max(float(saliency_map.max()), 1e-12)
    mixed: np.ndarray = (1 - weight) * saliency_map / top + weight * prior.astype(np.float32)
    return mixed


def box_of(mask: np.ndarray, config: LocalizationConfig) -> Box | None:
    """Step ``box``: the box of a foreground mask ``(h, w)`` bool by the
    config's rule, or None if the mask is empty."""
    if config.box == "largest":
        return largest_component_box(mask)
    return union_box(mask, config.union_min_fraction)


@dataclass
class ClassBox:
    """One class's box in a photo, with the mask and the map it was cut from.

    ``box`` is ``(x0, y0, x1, y1)`` in photo pixels. ``mask`` ``(height, width)``
    bool and ``saliency`` ``(height, width)`` float32 are in photo pixels too
    (index them ``[y, x]``; overlay them on the photo as they are), resampled on
    each access from the working copies the segmentation ran on:
    ``working_mask`` / ``working_saliency`` ``(h, w)``, the photo scaled by one
    factor so that its longest side is at most the config's ``work_side``.
    """

    prediction: Prediction
    box: Box  # photo pixels
    working_mask: np.ndarray  # (h, w) bool, at the working size
    working_saliency: np.ndarray  # (h, w) float32: the map the mask was cut from
    photo_size: tuple[int, int]  # (width, height)
    note: str = ""  # the fallback rule used, if any

    @property
    def mask(self) -> np.ndarray:
        """The foreground mask ``(height, width)`` bool, in photo pixels."""
        if self.working_mask.shape == self.photo_size[::-1]:
            return self.working_mask
        picture = Image.fromarray(self.working_mask.astype(np.uint8) * 255, mode="L")
        return np.asarray(picture.resize(self.photo_size, Image.Resampling.NEAREST)) > 127

    @property
    def saliency(self) -> np.ndarray:
        """The saliency map ``(height, width)`` float32, in photo pixels (bilinear)."""
        if self.working_saliency.shape == self.photo_size[::-1]:
            return self.working_saliency
        picture = Image.fromarray(self.working_saliency.astype(np.float32), mode="F")
        return np.asarray(picture.resize(self.photo_size, Image.Resampling.BILINEAR), dtype=np.float32)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "class_index": self.prediction.class_index,
            "wnid": self.prediction.wnid,
            "label": self.prediction.label,
            "box": [round(v, 2) for v in self.box],
        }
        if self.note:
            out["fallback"] = self.note
        return out


def working_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size ``(w, h)`` a photo is segmented at: longest side at most ``side``."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def boxes_for(
    photo: Image.Image,
    placement: Placement,
    maps: torch.Tensor,
    predictions: Sequence[Prediction],
    config: LocalizationConfig,
) -> list[ClassBox]:
    """Steps ``cut`` and ``box`` for one photo: one box per map ``(K, H, W)``
    on the model input (``placement`` says where the photo lies in it), in
    photo pixels, labelled with ``predictions`` (K)."""
    w, h = working_size(photo.width, photo.height, config.work_side)
    pixels = np.asarray(to_rgb(photo).resize((w, h), Image.Resampling.BILINEAR))
    on_photo = placement.to_photo(maps, size=(w, h)).float().cpu().numpy()
    sx, sy = photo.width / w, photo.height / h
    found = []
    for saliency_map, prediction in zip(on_photo, predictions):
        seg = cut(pixels, saliency_map, config)
        box, note = box_of(seg.mask, config), seg.note
        if box is None:
            box, note = whole_image_box(w, h), (note or "empty foreground") + "; whole image taken"
        found.append(ClassBox(prediction, scale_box(box, sx, sy), seg.mask, saliency_map, photo.size, note))
    return found


def localize_inputs(
    model: Classifier,
    photos: Sequence[Image.Image],
    inputs: torch.Tensor,
    placements: Sequence[Placement],
    classes: Sequence[Sequence[Prediction]],
    config: LocalizationConfig,
    deterministic: bool = False,
) -> list[list[ClassBox]]:
    """Maps and boxes for prepared inputs: for each photo, one :class:`ClassBox`
    per prediction in ``classes`` (the same number for every photo), in the
    photo's pixels. ``inputs`` ``(B, C, H, W)`` and ``placements`` are what
    ``model.prepare(photos)`` gave; ``config`` is one :func:`~.maps.config_for`
    gave for ``model``; ``deterministic``: see :func:`deepinside.attribute`.

    >>> inputs, placements = model.prepare(photos)  # doctest: +SKIP
    >>> classes = model.predictions(model.scores(inputs), k=1)  # doctest: +SKIP
    >>> found = localize_inputs(model, photos, inputs, placements, classes,
    ...                         config_for(model, "default"))  # doctest: +SKIP
    """
    targets = torch.tensor([[p.class_index for p in row] for row in classes], device=inputs.device)
    with repeatable(deterministic):
        maps = localization_maps(model, inputs, targets, config)
    return [
        boxes_for(photo, placement, m, row, config)
        for photo, placement, m, row in zip(photos, placements, maps, classes)
    ]
