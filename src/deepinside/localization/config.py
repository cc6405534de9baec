"""The localisation configs as data: every choice between a saliency map and
a box, the product's two named configs (``paper`` and ``default``) and the
ablations that measured the default's steps (docs/localization.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ..errors import DeepInsideError

SegmentationName = Literal["graphcut", "threshold", "mean", "otsu"]


@dataclass(frozen=True)
class CoarseWalk:
    """How a walk over the finer layer runs on a model that has none: over
    the feature layer instead, with these steps, power and cut (the finer
    walk's settings were chosen for finer features)."""

    steps: int
    power: float
    segmentation: SegmentationName


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
            stride (block 10 of the built-in model).
        coarse_walk: for a ``finer`` walk on a model with no finer layer, the
            walk over the feature layer taken instead (None: the same steps,
            power and cut over the feature layer).
    """

    name: str
    method: str = "gradient"
    method_options: tuple[tuple[str, object], ...] = ()
    flip: bool = False
    smoothing: float = 0.0
    segmentation: SegmentationName = "graphcut"
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
    coarse_walk: CoarseWalk | None = None

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

    @property
    def walks_finer(self) -> bool:
        """Whether the walk still has to find the layer at half the feature layer's stride."""
        return self.affinity_steps > 0 and self.affinity_layer is None and self.affinity_depth == "finer"


# Grad-CAM averaged over the input at 1x, 1.5x and 2x (finer feature grids),
# each map cut at its own mean: no threshold fitted.
_MULTISCALE = LocalizationConfig(
    "multiscale", method="grad-cam", scales=(1.0, 1.5, 2.0), segmentation="mean", box="largest"
)

# The multiscale walk over the feature layer's own affinities, cut at the mean.
_FEATURE_WALK = dataclasses.replace(
    _MULTISCALE, name="feature-walk", affinity_steps=16, affinity_power=8.0, affinity_scale=2.0
)

#: The product: the paper's pipeline, and the default we measured best.
PRESETS: dict[str, LocalizationConfig] = {
    "paper": LocalizationConfig("paper"),
    # The multiscale map carried by a random walk over the affinities of the
    # layer at half the feature layer's stride, on the input at 2x, so that it
    # follows the object's own features at twice Grad-CAM's resolution; the
    # walk leaves it nearly two-level, object and background, and Otsu's cut
    # falls between the two (localization/affinity.py).
    "default": dataclasses.replace(
        _MULTISCALE,
        name="default",
        segmentation="otsu",
        affinity_steps=4,
        affinity_power=4.0,
        affinity_scale=2.0,
        affinity_depth="finer",
        coarse_walk=CoarseWalk(
            _FEATURE_WALK.affinity_steps, _FEATURE_WALK.affinity_power, _FEATURE_WALK.segmentation
        ),
    ),
}

#: Ablations of the default, one step taken away each, kept so that the
#: measurements in docs/localization.md can be rerun through ``--config``.
ABLATIONS: dict[str, LocalizationConfig] = {
    # The walk over the feature layer rather than the finer one, cut at the mean.
    "feature-walk": _FEATURE_WALK,
    # No walk: the multiscale maps cut at their mean.
    "multiscale": _MULTISCALE,
    # No walk, and a fixed cut: the multiscale maps cut at 0.2 of their range.
    "fixed-threshold": dataclasses.replace(
        _MULTISCALE, name="fixed-threshold", segmentation="threshold", threshold=0.2
    ),
}

#: Every name ``--config`` takes: the product's configs, then the ablations.
CONFIGS: dict[str, LocalizationConfig] = {**PRESETS, **ABLATIONS}


def config_named(name: str | LocalizationConfig) -> LocalizationConfig:
    """The config called ``name`` (one of :data:`CONFIGS`), or ``name`` itself if it is a config."""
    if isinstance(name, LocalizationConfig):
        return name
    if name not in CONFIGS:
        raise DeepInsideError(
            f"unknown localisation config {name!r}: use {' or '.join(PRESETS)} "
            f"(or an ablation: {', '.join(ABLATIONS)})"
        )
    return CONFIGS[name]
