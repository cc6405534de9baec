"""Class-agnostic objectness from a network's last features (DDT: Wei et al.
2017, "Deep Descriptor Transforming for Image Co-Localization").

The descriptors of a photo (one per position of the feature layer) are
centred over the photo and projected on their first principal component:
where the photo's features vary most, the object usually differs from its
background, and the projection covers the whole object rather than the few
parts that decide its class. The component's sign is arbitrary; the class
map decides it (the sign whose map agrees with the class map), so the class
says *which* object and the component says *how far* it extends.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._core.gradients import capturing
from ..models.classifier import Classifier
from ..models.layers import as_feature_map


def first_component(features: torch.Tensor) -> torch.Tensor:
    """Feature maps ``(B, C, h, w)`` to ``(B, h, w)``: each photo's descriptors,
    centred over its positions, projected on their first principal component
    (sign arbitrary; zeros where the descriptors do not vary)."""
    b, c, h, w = features.shape
    x = features.detach().flatten(2).transpose(1, 2).double()  # (B, h*w, C): one descriptor a row
    x = x - x.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[:, 0, :, None])[..., 0].reshape(b, h, w).to(features.dtype)


#: Input pixels a features-only pass takes at most (two 224x224 inputs, one
#: at 2x): without gradients to keep, smaller passes run faster on the CPU,
#: their activations staying in its caches.
FEATURE_PIXELS_PER_PASS = 2 * 224 * 224


def feature_maps(model: Classifier, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output ``(B, C, h, w)`` of ``layer`` (a submodule name of ``model``;
    a transformer's tokens laid on their grid)
    on inputs ``x``, without gradients, through the model's fast view (batch
    norm folded, channels-last on the CPU; the same function up to float
    round-off), a few inputs a pass."""
    rows = max(1, FEATURE_PIXELS_PER_PASS // (x.shape[-2] * x.shape[-1]))
    found = []
    with capturing(model, x, layer) as (score, layout, outputs):
        with torch.no_grad():
            for chunk in x.split(rows):
                outputs.clear()
                score(layout(chunk))
                # A layer called twice a pass: its last output, as a hook sees.
                found.append(as_feature_map(outputs[-1], chunk.shape[-2:]))
    return torch.cat(found).contiguous()


def agreeing(components: torch.Tensor, class_maps: torch.Tensor) -> torch.Tensor:
    """Each view's component ``(B, V, H, W)`` turned, per class map ``(B, K, H,
    W)``, to the sign that correlates positively with that class's map, cut at
    zero, divided by its peak and averaged over the views: ``(B, K, H, W)``."""
    c = components - components.mean((-2, -1), keepdim=True)
    m = class_maps - class_maps.mean((-2, -1), keepdim=True)
    agreement = torch.einsum("bvhw,bkhw->bkv", c, m)
    signs = torch.where(agreement >= 0, 1.0, -1.0).to(components.dtype)
    oriented = F.relu(signs[..., None, None] * components[:, None])  # (B, K, V, H, W)
    peak = oriented.flatten(-2).amax(-1)[..., None, None].clamp_min(1e-12)
    return (oriented / peak).mean(2)
