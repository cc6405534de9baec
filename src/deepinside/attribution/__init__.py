"""Attribution: which input pixels decide a prediction (the paper's saliency,
the DeconvNet relation, and the methods that grew out of them)."""

from .._core.rules import backward_rule
from . import targets
from .api import Attribution, attribute, saliency
from .methods import (
    METHODS,
    DeconvNet,
    GradCam,
    Gradient,
    GradientXInput,
    GuidedBackprop,
    GuidedGradCam,
    IntegratedGradients,
    Method,
    SmoothGrad,
    reduce_channels,
)
from .targets import Target, resolve_targets

__all__ = [
    "METHODS",
    "Attribution",
    "DeconvNet",
    "GradCam",
    "Gradient",
    "GradientXInput",
    "GuidedBackprop",
    "GuidedGradCam",
    "IntegratedGradients",
    "Method",
    "SmoothGrad",
    "Target",
    "attribute",
    "backward_rule",
    "reduce_channels",
    "resolve_targets",
    "saliency",
    "targets",
]
