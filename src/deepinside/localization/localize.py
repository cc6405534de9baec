"""Localisation for free (paper section 3.1): object boxes from saliency maps
of a network trained only on image labels, for a list of photos.

:func:`localize` reads and prepares the photos a batch at a time, predicts
their classes and runs the pipeline (:func:`~.pipeline.localize_inputs`) on
the ``top_k`` of each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from ..errors import DeepInsideError
from ..io.prefetch import read_photos
from ..models.classifier import Classifier, Prediction
from .config import LocalizationConfig
from .maps import config_for, feature_layer_needed
from .pipeline import ClassBox, localize_inputs

#: Photos prepared at a time by default (the rows of a pass are bounded apart).
DEFAULT_BATCH_SIZE = 8


@dataclass
class PhotoBoxes:
    """One photo's size, its top predictions and one box per class explained."""

    width: int
    height: int
    predictions: list[Prediction]
    boxes: list[ClassBox] = field(default_factory=list)


def localize(
    model: Classifier,
    photos: Sequence[Image.Image | str | os.PathLike[str]],
    top_k: int = 5,
    config: str | LocalizationConfig = "default",
    batch_size: int = DEFAULT_BATCH_SIZE,
    deterministic: bool = False,
) -> list[PhotoBoxes]:
    """Boxes for each photo's ``top_k`` predicted classes, top-1 first, in the
    photo's pixels (x right, y down, x1/y1 exclusive). ``photos`` are PIL
    images or paths (read with :func:`~deepinside.io.prefetch.read_photos`),
    ``batch_size`` of them prepared at a time; the rows of each forward and
    backward pass are bounded by memory whatever the batch size
    (:data:`~.maps.PIXELS_PER_PASS`). Each :class:`ClassBox` carries its ``mask`` and
    ``saliency`` in the photo's pixels, ready to lay over it. ``deterministic``:
    the same maps bit for bit every time (see :func:`deepinside.attribute`).

    >>> found = deepinside.localize(model, ["cat.jpg"])  # doctest: +SKIP
    >>> x0, y0, x1, y1 = found[0].boxes[0].box  # the top-1 class's box  # doctest: +SKIP
    >>> found[0].boxes[0].mask.shape == (found[0].height, found[0].width)  # doctest: +SKIP
    True
    """
    config = config_for(model, config)
    if not 1 <= top_k <= len(model.classes):
        raise DeepInsideError(f"top_k must be between 1 and {len(model.classes)}, got {top_k}")
    if batch_size < 1:
        raise DeepInsideError(f"batch_size must be at least 1, got {batch_size}")
    feature_layer_needed(model, config)
    results = []
    for lo in range(0, len(photos), batch_size):
        chunk = [found.checked() for found in read_photos(photos[lo : lo + batch_size])]
        inputs, placements = model.prepare(chunk)
        # The classes boxed are the first of one top-k, so ties cannot differ.
        top = model.predictions(model.scores(inputs), max(top_k, 5))
        classes = [preds[:top_k] for preds in top]
        found = localize_inputs(model, chunk, inputs, placements, classes, config, deterministic)
        results += [PhotoBoxes(p.width, p.height, preds, b) for p, preds, b in zip(chunk, top, found)]
    return results
