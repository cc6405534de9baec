"""Photos in, explanations out: the loop and the model step that the command
line, the web app and batch runs share.

:func:`explain_photos` reads photos, batches them through the model, and
yields one :class:`PhotoSaliency` per readable photo or one
:class:`PhotoFailure` per unreadable one, in input order, so a caller decides
how to show or store each without one bad file stopping the rest.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .attribution import Method, attribute
from .attribution.methods import Reduction, method_from_name
from .errors import DeepInsideError, ImageError
from .io.photos import DEFAULT_MAX_PIXELS
from .io.prefetch import read_photos
from .models.classifier import Classifier, Prediction, layer_path, user_layer_name
from .models.preprocessing import Placement


@dataclass
class ClassMap:
    """One class's saliency map for one photo."""

    prediction: Prediction  # the class, with its score for this photo
    on_input: torch.Tensor  # (H, W) on the model input

    def on_photo(self, placement: Placement) -> np.ndarray:
        """The map resampled to the photo's pixels, ``(height, width)`` float32."""
        return placement.to_photo(self.on_input).cpu().numpy().astype(np.float32)


@dataclass
class PhotoSaliency:
    source: str
    photo: Image.Image
    placement: Placement
    predictions: list[Prediction]
    maps: list[ClassMap] = field(default_factory=list)
    method: str = "gradient"
    layer: str | None = None  # the feature layer a CAM method read, as the user's network names it


@dataclass
class PhotoFailure:
    source: str
    reason: str


PhotoSource = str | os.PathLike[str] | Image.Image


def explain_photos(
    model: Classifier,
    photos: Iterable[PhotoSource],
    targets: Sequence[int] | None = None,
    top_k: int = 1,
    batch_size: int = 8,
    num_predictions: int = 5,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    method: str | Method = "gradient",
    reduce: Reduction = "max-abs",
    workers: int = 0,
    deterministic: bool = False,
) -> Iterator[PhotoSaliency | PhotoFailure]:
    """Saliency maps for ``targets`` (class indices), or else for each photo's
    ``top_k`` predicted classes; all maps of a batch in one batched call of
    ``method`` (see :func:`deepinside.attribute`, also for ``deterministic``).
    ``workers`` processes decode photos ahead of the model (0: here)."""
    method = method_from_name(method)
    layer_read(model, method)  # found (and said) before any photo is read
    num_classes = len(model.classes)
    if not 1 <= top_k <= num_classes:
        raise DeepInsideError(
            f"--top-k must be between 1 and {num_classes} (the model's classes), got {top_k}"
        )
    if batch_size < 1:
        raise DeepInsideError(f"--batch-size must be at least 1, got {batch_size}")
    for part in read_batches(photos, batch_size, max_pixels, workers):
        if isinstance(part, PhotoFailure):
            yield part
        else:
            yield from _explain_batch(
                model, part, targets, top_k, num_predictions, method, reduce, deterministic
            )


def layer_read(model: Classifier, method: Method) -> str | None:
    """The feature layer ``method`` reads on ``model`` (None if it reads none),
    as the user's network names it."""
    if "layer" not in {f.name for f in dataclasses.fields(method)}:
        return None
    layer = getattr(method, "layer", None)
    return model.find_feature_layer() if layer is None else user_layer_name(model, layer_path(model, layer))


def read_batches(
    photos: Iterable[PhotoSource],
    batch_size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 0,
) -> Iterator[list[tuple[str, Image.Image]] | PhotoFailure]:
    """Photos read and grouped into batches of ``(source, photo)`` of at most
    ``batch_size``, in input order: an unreadable one comes as a
    :class:`PhotoFailure` where it stands (the batch before it cut short).
    ``workers`` processes decode ahead of the caller (see
    :func:`deepinside.io.prefetch.read_photos`; 0: here, one by one)."""
    pending: list[tuple[str, Image.Image]] = []
    for found in read_photos(photos, max_pixels, workers):
        if found.photo is None:
            if pending:
                yield pending
                pending = []
            yield PhotoFailure(found.source, found.error)
            continue
        pending.append((found.source, found.photo))
        if len(pending) == batch_size:
            yield pending
            pending = []
    if pending:
        yield pending


@dataclass
class BatchMaps:
    """The model's work on a batch of inputs: ``scores`` ``(B, classes)``, the
    ``classes`` mapped ``(B, K)``, and each method's ``maps`` ``(B, K, H, W)``."""

    scores: torch.Tensor
    classes: torch.Tensor
    maps: dict[str, torch.Tensor]


def explain_inputs(
    model: Classifier,
    inputs: torch.Tensor,
    methods: Sequence[Method],
    targets: Sequence[int] | None = None,
    top_k: int = 1,
    reduce: Reduction = "max-abs",
    deterministic: bool = False,
) -> BatchMaps:
    """Every method's maps of prepared ``inputs`` ``(B, 3, H, W)``, for
    ``targets`` (the same classes for every input) or else each input's
    ``top_k`` predicted classes, in one batched call per method: the model
    step that photo loops, batch runs and the web app share."""
    first, *rest = methods
    n = len(inputs)
    if targets is not None:
        classes: torch.Tensor | None = torch.tensor([list(targets)] * n, device=inputs.device)
    elif top_k == 1:
        classes = None  # the first method's own forward pass finds the top class: no pass just for it
    else:
        classes = model.scores(inputs).topk(top_k, dim=1).indices
    found = attribute(model, inputs, classes, first, reduce, deterministic=deterministic)
    scores, classes = found.scores, found.targets.reshape(n, -1)
    maps = {first.name: found.map.reshape(n, classes.shape[1], *found.map.shape[-2:])}
    for method in rest:
        maps[method.name] = attribute(model, inputs, classes, method, reduce, deterministic=deterministic).map
    return BatchMaps(scores, classes, maps)


def _explain_batch(
    model: Classifier,
    batch: list[tuple[str, Image.Image]],
    targets: Sequence[int] | None,
    top_k: int,
    num_predictions: int,
    method: Method,
    reduce: Reduction,
    deterministic: bool,
) -> Iterator[PhotoSaliency]:
    inputs, placements = model.prepare([photo for _, photo in batch])
    found = explain_inputs(model, inputs, [method], targets, top_k, reduce, deterministic)
    maps, scores = found.maps[method.name], found.scores
    top = model.predictions(scores, max(num_predictions, top_k))
    explained = model.predictions_of(scores, found.classes)
    for b, (source, photo) in enumerate(batch):
        class_maps = [ClassMap(prediction, maps[b, k]) for k, prediction in enumerate(explained[b])]
        yield PhotoSaliency(
            source, photo, placements[b], top[b], class_maps, method.name, layer_read(model, method)
        )


def collect(results: Iterable[PhotoSaliency | PhotoFailure]) -> list[PhotoSaliency]:
    """Successful results only; raise on the first failure (for Python users
    who want an exception rather than a report)."""
    out = []
    for r in results:
        if isinstance(r, PhotoFailure):
            raise ImageError(r.reason)
        out.append(r)
    return out


__all__ = [
    "BatchMaps",
    "ClassMap",
    "PhotoFailure",
    "PhotoSaliency",
    "collect",
    "explain_inputs",
    "explain_photos",
]
