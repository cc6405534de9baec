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

import torch
import torch.nn.functional as F


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
