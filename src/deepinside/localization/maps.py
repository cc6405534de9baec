"""The model's half of localisation: the class maps (``maps``) and their walk
over the network's own features (``refine``), on prepared inputs.

Both steps take and return maps ``(B, K, H, W)`` on the model input; the
cut and the box (:mod:`.pipeline`) need no model.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..attribution import Method, attribute
from ..attribution.methods import method_from_name
from ..errors import DeepInsideError
from ..models.classifier import Classifier, feature_layer_path, layer_path
from .affinity import finer_layer, propagate
from .config import LocalizationConfig, config_named
from .objectness import agreeing, feature_maps, first_component

#: Input pixels one forward/backward pass takes at most (8 inputs of 224x224):
#: what autograd keeps for the backward pass grows with the rows times their
#: pixels, so the 2x view of a config takes a quarter of the rows of its 1x
#: view, and a run's memory does not grow with the batch size.
PIXELS_PER_PASS = 8 * 224 * 224


def class_maps(
    model: Classifier, inputs: torch.Tensor, targets: torch.Tensor, config: LocalizationConfig
) -> torch.Tensor:
    """Step ``maps``: the config's method's maps ``(B, K, H, W)`` of inputs
    ``(B, C, H, W)`` for targets ``(B, K)``. With several views (the config's
    ``scales``, and mirrored with ``flip``), each view's maps are brought
    back onto the input, divided by their peak and averaged; with
    ``objectness``, the features' first component is mixed in."""
    feature_layer_needed(model, config)
    views = [
        (scale, flip) for scale in config.scales for flip in ((False, True) if config.flip else (False,))
    ]
    total: torch.Tensor | None = None
    components: list[torch.Tensor] = []  # per view (B, 1, H, W), with objectness
    for scale, flip in views:
        x = view_of(inputs, scale, flip)
        maps = view_maps(model, x, targets, config, scale)
        maps = maps.flip(-1) if flip else maps
        if scale != 1.0:
            maps = F.interpolate(maps, size=inputs.shape[-2:], mode="bilinear", align_corners=False)
        maps = maps / peak(maps) if len(views) > 1 else maps
        total = maps if total is None else total + maps
        if config.objectness > 0:
            layer = feature_layer_path(model, config.layer, x)
            components.append(view_component(model, x, layer, inputs.shape[-2:], flip))
    assert total is not None  # a config has at least one scale
    total = total / len(views)
    if config.objectness > 0:
        # The class map says which object; the features' first component, turned
        # to agree with it, how far the object extends (localization/objectness.py).
        objectness = agreeing(torch.cat(components, dim=1), total)
        total = (1 - config.objectness) * total / peak(total) + config.objectness * objectness / peak(
            objectness
        )
    return total


def refine(
    model: Classifier, inputs: torch.Tensor, maps: torch.Tensor, config: LocalizationConfig
) -> torch.Tensor:
    """Step ``refine``: maps ``(B, K, H, W)`` carried by the config's random
    walk over the affinities of its layer's descriptors, on ``inputs`` at its
    scale (unchanged with no walk)."""
    if config.affinity_steps == 0:
        return maps
    layer = config.affinity_layer or feature_layer_path(model, config.layer, inputs)
    x = inputs
    if config.affinity_scale != 1.0:
        x = F.interpolate(inputs, scale_factor=config.affinity_scale, mode="bilinear", align_corners=False)
    if config.walks_finer:
        layer = finer_layer(model, layer, x) or layer
    features = feature_maps(model, x, layer)
    return propagate(maps, features, config.affinity_power, config.affinity_steps)


def localization_maps(
    model: Classifier, inputs: torch.Tensor, targets: torch.Tensor, config: LocalizationConfig
) -> torch.Tensor:
    """The maps ``(B, K, H, W)`` the boxes are cut from: :func:`class_maps`,
    then :func:`refine`."""
    return refine(model, inputs, class_maps(model, inputs, targets, config), config)


def view_of(inputs: torch.Tensor, scale: float, flip: bool) -> torch.Tensor:
    """The inputs as one view sees them: mirrored, then scaled."""
    x = inputs.flip(-1) if flip else inputs
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    return x


def view_maps(
    model: Classifier, x: torch.Tensor, targets: torch.Tensor, config: LocalizationConfig, scale: float
) -> torch.Tensor:
    """The method's maps of one view ``x``, refusing in one line a model that
    takes one input size only when the view is enlarged."""
    method = bounded_rows(config.method, dict(config.method_options), x)
    try:
        return attribute(model, x, targets, method).map
    except (RuntimeError, ValueError):  # typically a network that takes one input size only
        if scale == 1.0:
            raise
        raise one_size_only(config, x, scale) from None


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


def peak(maps: torch.Tensor) -> torch.Tensor:
    """Each map's maximum ``(..., 1, 1)``, kept off zero so that it divides."""
    return maps.flatten(-2).amax(-1)[..., None, None].clamp_min(1e-12)


def bounded_rows(method: str, options: dict[str, object], x: torch.Tensor) -> Method:
    """``method`` with its options, its rows per pass bounded by memory for
    inputs like ``x`` ``(B, 3, H, W)`` unless the options set them."""
    chosen = method_from_name(method, **options)
    if "chunk" in options or "chunk" not in {f.name for f in dataclasses.fields(chosen)}:
        return chosen
    return method_from_name(method, **options, chunk=max(1, PIXELS_PER_PASS // (x.shape[-2] * x.shape[-1])))


def config_for(model: Classifier, name: str | LocalizationConfig) -> LocalizationConfig:
    """The config ``name`` as it runs on ``model``: a walk over the finer
    layer names that layer; on a model with none, it walks over the feature
    layer as the config's ``coarse_walk`` says."""
    config = config_named(name)
    if not config.walks_finer:
        return config
    feature_layer_needed(model, config)
    h, w = model.preprocessing.input_size
    device = next(model.parameters(), torch.empty(0)).device
    side = (round(h * config.affinity_scale), round(w * config.affinity_scale))
    example = torch.zeros(1, model.preprocessing.channels, *side, device=device)
    layer = feature_layer_path(model, config.layer, example)
    try:
        finer = finer_layer(model, layer, example)
    except (RuntimeError, ValueError):  # typically a network that takes one input size only
        raise one_size_only(config, example, config.affinity_scale) from None
    if finer is not None:
        return dataclasses.replace(config, affinity_layer=finer)
    coarse = config.coarse_walk
    if coarse is None:
        return dataclasses.replace(config, affinity_depth="features")
    return dataclasses.replace(
        config,
        affinity_depth="features",
        affinity_steps=coarse.steps,
        affinity_power=coarse.power,
        segmentation=coarse.segmentation,
    )


def one_size_only(config: LocalizationConfig, x: torch.Tensor, scale: float) -> DeepInsideError:
    """The error for a model that failed on the enlarged inputs ``x`` of ``config``."""
    h, w = x.shape[-2:]
    return DeepInsideError(
        f"the model failed on {h}x{w} inputs, which config {config.name!r} looks at "
        f"({scale:g}x the input size): for a model that takes one input size only, "
        "use the paper config (--config paper)"
    )


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
        raise DeepInsideError(
            f"config {config.name!r} uses {_feature_use(config)}, which needs the model's last "
            f"convolutional layer ({err}); or use --config paper (the paper's gradient map: no layer needed)"
        ) from None


def _feature_use(config: LocalizationConfig) -> str:
    if config.method in ("grad-cam", "guided-grad-cam"):
        return config.method
    return "objectness" if config.objectness > 0 else "feature affinities"
