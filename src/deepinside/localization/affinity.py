"""A class map refined along the network's own features: a random walk over
the affinities of the feature layer's descriptors (the propagation of
PSA/AffinityNet, Ahn & Kwak 2018, "Learning Pixel-level Semantic Affinity
with Image-level Supervision", with the frozen classifier's features in
place of a trained affinity network).

Grad-CAM's grid is coarse (stride 32) and its bilinear upsampling bleeds
past the object's edges, so boxes come out too large. The descriptors of the
feature layer on the input enlarged 2x (a 14 x 14 grid for a 224 input) say
which positions look alike: the affinity of two positions is the cosine
similarity of their descriptors, cut at zero and raised to a power (so that
only close likeness counts), and each row of the matrix is divided by its
sum. A step ``map <- T map`` replaces each position's evidence with its
average over the positions that look like it: the map fills the object and
drains from the background beside it, whose descriptors look like other
background.
"""

from __future__ import annotations

import collections
import weakref

import torch
import torch.nn.functional as F

from ..models.classifier import Classifier
from ..models.layers import layer_outputs


def transition(features: torch.Tensor, power: float) -> torch.Tensor:
    """Feature maps ``(B, C, h, w)`` to each photo's random-walk transition
    matrix ``(B, h*w, h*w)``: cosine similarity of the positions' descriptors,
    cut at zero, raised to ``power``, each row summing to 1. A position whose
    descriptor is all zeros is like nothing and keeps its own value."""
    b, c, h, w = features.shape
    unit = F.normalize(features.detach().flatten(2).transpose(1, 2).float(), dim=-1)  # (B, n, C)
    affinity = F.relu(unit @ unit.transpose(1, 2)) ** power
    alone = affinity.sum(-1) == 0
    affinity = affinity + torch.diag_embed(alone.to(affinity.dtype))
    return affinity / affinity.sum(-1, keepdim=True)


def propagate(maps: torch.Tensor, features: torch.Tensor, power: float, steps: int) -> torch.Tensor:
    """Maps ``(B, K, H, W)`` averaged down onto the features' grid ``(B, C, h,
    w)``, carried ``steps`` random-walk steps (:func:`transition`), and brought
    back to ``(H, W)`` bilinearly: ``(B, K, H, W)``."""
    b, k, height, width = maps.shape
    h, w = features.shape[-2:]
    t = transition(features, power).to(maps.dtype)
    v = F.adaptive_avg_pool2d(maps, (h, w)).flatten(2).transpose(1, 2)  # (B, n, K)
    for _ in range(steps):
        v = t @ v
    grid = v.transpose(1, 2).reshape(b, k, h, w)
    return F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)


#: Per model, the finer layer found for each (feature layer, input size, modules).
_FINER: weakref.WeakKeyDictionary[Classifier, dict[tuple[object, ...], str | None]] = (
    weakref.WeakKeyDictionary()
)


def finer_layer(model: Classifier, feature_layer: str, x: torch.Tensor) -> str | None:
    """The deepest layer at half the feature layer's stride (a grid twice as
    fine each way), or None if the model has none: block 10 of the built-in
    model, ``layer3`` of a ResNet. Its descriptors still say what a position
    shows, and draw the object's outline twice as finely. Not candidates: a
    layer inside a block that changes the grid (the 1x1 expansion that opens
    a strided block: the block's scratch, not a stage's result), and a module
    called more than once a pass (a shared pooling or ReLU: which call is
    meant is not known). Found by one pass of a single input like ``x``
    through the model (its own forward hooks see that pass), and remembered
    while the model keeps the same modules."""
    key = (feature_layer, *x.shape[-2:], tuple(id(m) for m in model.modules()))
    found = _FINER.setdefault(model, {})
    if key not in found:
        found[key] = _deepest_at_half_stride(_output_grids(model, x[:1]), feature_layer)
    return found[key]


def _output_grids(model: Classifier, x: torch.Tensor) -> list[tuple[str, tuple[int, int]]]:
    """Each submodule call's output grid ``(h, w)`` on ``x``, in the order the
    calls finish (a block after its layers); 4-D outputs only."""
    with torch.no_grad():
        recorded, _ = layer_outputs(model, x)
    return [(name, (int(out.shape[-2]), int(out.shape[-1]))) for name, out in recorded if out.dim() == 4]


def _deepest_at_half_stride(grids: list[tuple[str, tuple[int, int]]], feature_layer: str) -> str | None:
    last = max((i for i, (n, _) in enumerate(grids) if n == feature_layer), default=None)
    if last is None:
        return None
    fh, fw = grids[last][1]
    trunk = {
        feature_layer,
        *(feature_layer.rsplit(".", k)[0] for k in range(1, feature_layer.count(".") + 1)),
    }
    calls = collections.Counter(name for name, _ in grids)
    grid_of = dict(grids)

    def candidate(name: str, grid: tuple[int, int]) -> bool:
        parts = name.split(".")
        parents = (".".join(parts[:k]) for k in range(1, len(parts)))
        inside_another_grid = any(p in grid_of and p not in trunk and grid_of[p] != grid for p in parents)
        return (
            round(grid[0] / fh) == 2
            and round(grid[1] / fw) == 2
            and calls[name] == 1
            and not inside_another_grid
        )

    for name, grid in reversed(grids[:last]):
        if candidate(name, grid):
            return name
    return None
