"""Localisation for free (paper section 3.1): object boxes from saliency maps
of a network trained only on image labels.

A :class:`LocalizationConfig` names every choice of the pipeline (which map,
smoothing, segmentation, box rule); ``PRESETS`` holds the paper's and our
measured default. :func:`localize` returns, per photo, one box per explained
class in the photo's own pixels.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._core.precision import repeatable
from ..attribution import Method, attribute
from ..attribution.methods import method_from_name
from ..errors import DeepInsideError
from ..io.photos import to_rgb
from ..io.prefetch import read_photos
from ..models.classifier import Classifier, Prediction, feature_layer_path, layer_path
from ..models.preprocessing import Placement
from .affinity import finer_layer, propagate
from .boxes import Box, largest_component_box, scale_box, union_box, whole_image_box
from .objectness import agreeing, feature_maps, first_component
from .segment import Segmentation, above_mean, graphcut, otsu_cut, threshold


@dataclass(frozen=True)
class LocalizationConfig:
    """Every choice between a saliency map and a box.

    Args:
        method: attribution method for the map; ``method_options`` its options.
        flip: also explain the mirrored photo and average the two maps.
        scales: input scales whose maps are averaged (e.g. ``(1.0, 1.5)``: the
            model also sees the input enlarged 1.5x, for a finer map).
        centre_prior: weight of a centred Gaussian mixed into the normalised
            map (photographers centre their subject; 0: none).
        smoothing: Gaussian blur of the map, sigma as a fraction of the
            working image's shorter side (0: none).
        segmentation: ``graphcut`` (the paper's, from quantile seeds),
            ``threshold`` (pixels above ``threshold`` x the map's range),
            ``mean`` (pixels at or above the map's own mean) or ``otsu``
            (at or above Otsu's threshold of the map); the last two have no
            fraction to choose.
        box: ``largest`` connected component (the paper's) or ``union`` of the
            components with at least ``union_min_fraction`` of the largest's area.
        work_side: the longest side, in pixels, at which maps are segmented.
        objectness: weight of class-agnostic objectness mixed into the class
            map, both over their peaks (0: none; 0.5: their mean): the first
            principal component of the feature layer's descriptors, its sign
            the one that agrees with the class map (DDT; needs a feature layer).
        affinity_steps: random-walk steps that carry the averaged map over the
            affinities of ``affinity_layer``'s descriptors on the input at
            ``affinity_scale``, cosine similarities cut at 0 and raised to
            ``affinity_power`` (0: none; localization/affinity.py).
        affinity_layer: the layer whose descriptors give the affinities
            (a submodule name; None: chosen by ``affinity_depth``).
        affinity_depth: with no ``affinity_layer``, ``features`` walks over
            the feature layer, ``finer`` over the deepest layer at half its
            stride (block 10 of the built-in model; the feature layer if the
            model has none).
    """

    name: str
    method: str = "gradient"
    method_options: tuple[tuple[str, object], ...] = ()
    flip: bool = False
    smoothing: float = 0.0
    segmentation: Literal["graphcut", "threshold", "mean", "otsu"] = "graphcut"
    fg_quantile: float = 0.95
    bg_quantile: float = 0.30
    threshold: float = 0.2
    box: Literal["largest", "union"] = "largest"
    union_min_fraction: float = 0.0
    work_side: int = 320
    scales: tuple[float, ...] = (1.0,)
    centre_prior: float = 0.0
    objectness: float = 0.0
    affinity_steps: int = 0
    affinity_power: float = 8.0
    affinity_scale: float = 2.0
    affinity_layer: str | None = None
    affinity_depth: Literal["features", "finer"] = "features"

    @property
    def uses_feature_layer(self) -> bool:
        """Whether the config reads the model's feature layer (its CAM method,
        objectness, or a walk over the feature layer's affinities)."""
        return (
            self.method in ("grad-cam", "guided-grad-cam")
            or self.objectness > 0
            or (self.affinity_steps > 0 and self.affinity_layer is None)
        )

    @property
    def layer(self) -> str | None:
        """The feature layer the method options name, if any (else the model's)."""
        layer = dict(self.method_options).get("layer")
        return layer if isinstance(layer, str) else None

    def segment(self, photo: np.ndarray, saliency_map: np.ndarray) -> Segmentation:
        if self.centre_prior > 0:
            h, w = saliency_map.shape
            ys, xs = np.mgrid[0:h, 0:w]
            prior = np.exp(-(((xs + 0.5) / w - 0.5) ** 2 + ((ys + 0.5) / h - 0.5) ** 2) / (2 * 0.25**2))
            peak = max(float(saliency_map.max()), 1e-12)
            saliency_map = (1 - self.centre_prior) * saliency_map / peak + self.centre_prior * prior.astype(
                np.float32
            )
        if self.smoothing > 0:
            sigma = self.smoothing * min(saliency_map.shape)
            saliency_map = cv2.GaussianBlur(saliency_map, (0, 0), sigma)
        if self.segmentation == "graphcut":
            return graphcut(photo, saliency_map, self.fg_quantile, self.bg_quantile)
        if self.segmentation == "mean":
            return above_mean(saliency_map)
        if self.segmentation == "otsu":
            return otsu_cut(saliency_map)
        return threshold(saliency_map, self.threshold)

    def box_of(self, mask: np.ndarray) -> Box | None:
        if self.box == "largest":
            return largest_component_box(mask)
        return union_box(mask, self.union_min_fraction)


# Grad-CAM averaged over the input at 1x, 1.5x and 2x (finer feature grids),
# each map cut at its own mean: no threshold fitted (docs/localization.md).
_MULTISCALE = LocalizationConfig(
    "multiscale", method="grad-cam", scales=(1.0, 1.5, 2.0), segmentation="mean", box="largest"
)

PRESETS: dict[str, LocalizationConfig] = {
    "paper": LocalizationConfig("paper"),
    # The multiscale map carried 4 random-walk steps over the affinities of the
    # layer at half the feature layer's stride, on the input at 2x, so that it
    # follows the object's own features at twice Grad-CAM's resolution; the
    # walk leaves it nearly two-level, object and background, and Otsu's cut
    # falls between the two (localization/affinity.py, docs/localization.md).
    "default": dataclasses.replace(
        _MULTISCALE,
        name="default",
        segmentation="otsu",
        affinity_steps=4,
        affinity_power=4.0,
        affinity_scale=2.0,
        affinity_depth="finer",
    ),
    # The previous default: 16 steps over the feature layer's own affinities, cut at the mean.
    "feature-walk": dataclasses.replace(
        _MULTISCALE, name="feature-walk", affinity_steps=16, affinity_power=8.0, affinity_scale=2.0
    ),
    # An earlier default: the multiscale maps without a walk.
    "multiscale": _MULTISCALE,
    # The first measured default: the multiscale maps cut at 0.2 of their
    # range, a fraction chosen on the dev photos.
    "fixed-threshold": dataclasses.replace(
        _MULTISCALE, name="fixed-threshold", segmentation="threshold", threshold=0.2
    ),
}


def config_named(name: str | LocalizationConfig) -> LocalizationConfig:
    if isinstance(name, LocalizationConfig):
        return name
    if name not in PRESETS:
        raise DeepInsideError(f"unknown localisation config {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def config_for(model: Classifier, name: str | LocalizationConfig) -> LocalizationConfig:
    """The config ``name`` as it runs on ``model``. A walk over the finer
    layer names that layer; on a model with none, it walks over the feature
    layer with the ``feature-walk`` config's power, steps and cut instead:
    the finer walk's were chosen for finer features, and on the feature
    layer they do worse than those (docs/localization.md, sixth round)."""
    config = config_named(name)
    if config.affinity_steps == 0 or config.affinity_layer is not None or config.affinity_depth != "finer":
        return config
    feature_layer_needed(model, config)
    h, w = model.preprocessing.input_size
    device = next(model.parameters(), torch.empty(0)).device
    example = torch.zeros(
        1,
        model.preprocessing.channels,
        round(h * config.affinity_scale),
        round(w * config.affinity_scale),
        device=device,
    )
    layer = feature_layer_path(model, config.layer, example)
    try:
        finer = finer_layer(model, layer, example)
    except (RuntimeError, ValueError):  # typically a network that takes one input size only
        raise one_size_only(config, example, config.affinity_scale) from None
    if finer is not None:
        return dataclasses.replace(config, affinity_layer=finer)
    walk = PRESETS["feature-walk"]
    return dataclasses.replace(
        config,
        affinity_depth="features",
        affinity_steps=walk.affinity_steps,
        affinity_power=walk.affinity_power,
        segmentation=walk.segmentation,
    )


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
    photo_size: tuple[int, int]  # (width, height)
    note: str = ""  # the fallback rule used, if any
    working_saliency: np.ndarray | None = None  # (h, w) float32: the map the mask was cut from

    @property
    def mask(self) -> np.ndarray:
        """The foreground mask ``(height, width)`` bool, in photo pixels."""
        if self.working_mask.shape == self.photo_size[::-1]:
            return self.working_mask
        picture = Image.fromarray(self.working_mask.astype(np.uint8) * 255, mode="L")
        return np.asarray(picture.resize(self.photo_size, Image.Resampling.NEAREST)) > 127

    @property
    def saliency(self) -> np.ndarray | None:
        """The saliency map ``(height, width)`` float32, in photo pixels (bilinear)."""
        if self.working_saliency is None or self.working_saliency.shape == self.photo_size[::-1]:
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


@dataclass
class PhotoBoxes:
    width: int
    height: int
    predictions: list[Prediction]
    boxes: list[ClassBox] = field(default_factory=list)


def working_size(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def explain_maps(
    model: Classifier, inputs: torch.Tensor, targets: torch.Tensor, config: LocalizationConfig
) -> torch.Tensor:
    """Maps ``(B, K, H, W)`` for targets ``(B, K)``. With several views (the
    config's ``scales``, and mirrored with ``flip``), each view's maps are
    brought back onto the input, divided by their peak and averaged."""
    options = dict(config.method_options)
    feature_layer_needed(model, config)
    views = [
        (scale, flip) for scale in config.scales for flip in ((False, True) if config.flip else (False,))
    ]
    total = None
    components: list[torch.Tensor] = []  # per view (B, 1, H, W), with objectness
    for scale, flip in views:
        x = inputs.flip(-1) if flip else inputs
        if scale != 1.0:
            x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        method = bounded_rows(config.method, options, x)
        try:
            maps = attribute(model, x, targets, method).map
        except (RuntimeError, ValueError):  # typically a network that takes one input size only
            if scale == 1.0:
                raise
            raise one_size_only(config, x, scale) from None
        maps = maps.flip(-1) if flip else maps
        if scale != 1.0:
            maps = F.interpolate(maps, size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        maps = maps / _peak(maps) if len(views) > 1 else maps
        total = maps if total is None else total + maps
        if config.objectness > 0:
            layer = feature_layer_path(model, config.layer, x)
            components.append(view_component(model, x, layer, inputs.shape[-2:], flip))
    assert total is not None
    total = total / len(views)
    if config.objectness > 0:
        # The class map says which object; the features' first component, turned
        # to agree with it, how far the object extends (localization/objectness.py).
        objectness = agreeing(torch.cat(components, dim=1), total)
        total = (1 - config.objectness) * total / _peak(total) + config.objectness * objectness / _peak(
            objectness
        )
    if config.affinity_steps > 0:
        total = along_features(model, inputs, total, config)
    return total


def one_size_only(config: LocalizationConfig, x: torch.Tensor, scale: float) -> DeepInsideError:
    """The error for a model that failed on the enlarged inputs ``x`` of ``config``."""
    h, w = x.shape[-2:]
    return DeepInsideError(
        f"the model failed on {h}x{w} inputs, which config {config.name!r} looks at "
        f"({scale:g}x the input size): for a model that takes one input size only, "
        "use the paper config (--config paper)"
    )


def along_features(
    model: Classifier, inputs: torch.Tensor, maps: torch.Tensor, config: LocalizationConfig
) -> torch.Tensor:
    """Maps ``(B, K, H, W)`` carried by the config's random walk over the
    affinities of its layer's descriptors, on ``inputs`` at its scale."""
    layer = config.affinity_layer or feature_layer_path(model, config.layer, inputs)
    x = inputs
    if config.affinity_scale != 1.0:
        x = F.interpolate(inputs, scale_factor=config.affinity_scale, mode="bilinear", align_corners=False)
    if config.affinity_layer is None and config.affinity_depth == "finer":
        layer = finer_layer(model, layer, x) or layer
    features = feature_maps(model, x, layer)
    return propagate(maps, features, config.affinity_power, config.affinity_steps)


#: Photos prepared at a time by default (the rows of a pass are bounded apart).
DEFAULT_BATCH_SIZE = 8

#: Input pixels one forward/backward pass takes at most (8 inputs of 224x224):
#: what autograd keeps for the backward pass grows with the rows times their
#: pixels, so the 2x view of a config takes a quarter of the rows of its 1x
#: view. This keeps a localisation run under about 1.5 GB (docs/localization.md).
PIXELS_PER_PASS = 8 * 224 * 224


def bounded_rows(method: str, options: dict[str, object], x: torch.Tensor) -> Method:
    """``method`` with its options, its rows per pass bounded by memory for
    inputs like ``x`` ``(B, 3, H, W)`` unless the options set them."""
    chosen = method_from_name(method, **options)
    if "chunk" in options or "chunk" not in {f.name for f in dataclasses.fields(chosen)}:
        return chosen
    return dataclasses.replace(chosen, chunk=max(1, PIXELS_PER_PASS // (x.shape[-2] * x.shape[-1])))


def feature_layer_needed(model: Classifier, config: LocalizationConfig) -> None:
    """Find the feature layer a CAM config needs before any work (printing
    nothing), or refuse in one line naming both ways out."""
    if not config.uses_feature_layer:
        return
    try:
        if config.layer is None:
            model.find_feature_layer()
        else:
            layer_path(model, config.layer)
    except DeepInsideError as err:
        uses = (
            config.method
            if config.method in ("grad-cam", "guided-grad-cam")
            else "objectness"
            if config.objectness > 0
            else "feature affinities"
        )
        raise DeepInsideError(
            f"config {config.name!r} uses {uses}, which needs the model's last convolutional layer ({err}); "
            "or use --config paper (the paper's gradient map: no layer needed)"
        ) from None


def view_component(
    model: Classifier, x: torch.Tensor, layer: str, size: torch.Size, flip: bool
) -> torch.Tensor:
    """The first principal component of the descriptors of ``layer`` on the view
    ``x`` ``(B, 3, h, w)``, brought back onto the input ``size`` as the view's
    maps are: ``(B, 1, H, W)``, sign arbitrary."""
    features = feature_maps(model, x, layer)
    component = first_component(features)[:, None]
    component = F.interpolate(component, size=x.shape[-2:], mode="bilinear", align_corners=False)
    component = component.flip(-1) if flip else component
    if component.shape[-2:] != size:
        component = F.interpolate(component, size=size, mode="bilinear", align_corners=False)
    return component


def _peak(maps: torch.Tensor) -> torch.Tensor:
    return maps.flatten(-2).amax(-1)[..., None, None].clamp_min(1e-12)


def boxes_for(
    photo: Image.Image,
    placement: Placement,
    maps: torch.Tensor,
    predictions: Sequence[Prediction],
    config: LocalizationConfig,
) -> list[ClassBox]:
    """One box per map ``(K, H, W)`` (on the model input), in photo pixels."""
    w, h = working_size(photo.width, photo.height, config.work_side)
    pixels = np.asarray(to_rgb(photo).resize((w, h), Image.Resampling.BILINEAR))
    on_photo = placement.to_photo(maps, size=(w, h)).float().cpu().numpy()
    sx, sy = photo.width / w, photo.height / h
    found = []
    for saliency_map, prediction in zip(on_photo, predictions):
        seg = config.segment(pixels, saliency_map)
        box = config.box_of(seg.mask)
        note = seg.note
        if box is None:
            box, note = whole_image_box(w, h), (note or "empty foreground") + "; whole image taken"
        found.append(ClassBox(prediction, scale_box(box, sx, sy), seg.mask, photo.size, note, saliency_map))
    return found


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
    images or paths (read with :func:`~deepinside.io.photos.load_photo`),
    ``batch_size`` of them prepared at a time; the rows of each forward and
    backward pass are bounded by memory whatever the batch size
    (:data:`PIXELS_PER_PASS`). Each :class:`ClassBox` carries its ``mask`` and
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
        scores = model.scores(inputs)
        top = model.predictions(scores, max(top_k, 5))
        # The classes the boxes are labelled with (one top-k, so ties cannot differ).
        targets = torch.tensor(
            [[p.class_index for p in preds[:top_k]] for preds in top], device=inputs.device
        )
        with repeatable(deterministic):
            maps = explain_maps(model, inputs, targets, config)
        for photo, placement, m, preds in zip(chunk, placements, maps, top):
            boxes = boxes_for(photo, placement, m, preds[:top_k], config)
            results.append(PhotoBoxes(photo.width, photo.height, preds, boxes))
    return results
