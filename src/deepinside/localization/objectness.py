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

from ..models.classifier import Classifier


def first_component(features: torch.Tensor) -> torch.Tensor:
    """Feature maps ``(B, C, h, w)`` to ``(B, h, w)``: each photo's descriptors,
    centred over its positions, projected on their first principal component
    (sign arbitrary; zeros where the descriptors do not vary)."""
    b, c, h, w = features.shape
    x = features.detach().flatten(2).transpose(1, 2).double()  # (B, h*w, C): one descriptor a row
    x = x - x.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return (x @ vh[:, 0, :, None])[..., 0].reshape(b, h, w).to(features.dtype)


def feature_maps(model: Classifier, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The output ``(B, C, h, w)`` of ``layer`` (a submodule name of ``model``)
    on inputs ``x``, from an eval-mode pass without gradients."""
    seen: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        model.scores(x)
    finally:
        handle.remove()
    return seen[-1]


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
