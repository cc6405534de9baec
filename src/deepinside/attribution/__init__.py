"""Attribution: which input pixels decide a prediction (the paper's saliency and its descendants)."""

from .gradient import Target, resolve_targets, saliency, saliency_gradient

__all__ = ["Target", "resolve_targets", "saliency", "saliency_gradient"]
