"""Deletion and insertion (Petsiuk et al. 2018, RISE): does the map rank the
pixels the model actually relies on?

Deletion removes pixels most-salient-first (set to 0 in the model's input
space: the training mean colour) and tracks the class probability; a faithful
map makes it fall fast (low AUC). Insertion reveals pixels most-salient-first
onto a blurred copy; a faithful map makes it rise fast (high AUC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._core.gradients import scoring


@dataclass(frozen=True)
class Curves:
    """Class probability after each step ``(B, steps + 1)``, first step = nothing changed."""

    deletion: torch.Tensor
    insertion: torch.Tensor

    @property
    def deletion_auc(self) -> torch.Tensor:
        return auc(self.deletion)

    @property
    def insertion_auc(self) -> torch.Tensor:
        return auc(self.insertion)


def auc(curves: torch.Tensor) -> torch.Tensor:
    """Area under curves ``(B, n)`` sampled evenly over [0, 1] (trapezoid rule)."""
    n = curves.shape[1] - 1
    return (curves.sum(1) - (curves[:, 0] + curves[:, -1]) / 2) / n


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur ``(B, C, H, W)`` with a Gaussian of ``sigma`` pixels (reflected edges)."""
    radius = max(1, math.ceil(2 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    c = images.shape[1]
    out = F.pad(images, [radius] * 4, mode="reflect")
    out = F.conv2d(out, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def deletion_insertion(
    model: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 50,
    blur_sigma: float = 5.0,
    chunk: int = 32,
    seed: int = 0,
    deterministic: bool = False,
) -> Curves:
    """Deletion and insertion curves for maps ``(B, H, W)`` on inputs ``(B, 3, H, W)``.

    Each step changes ``H*W/steps`` more pixels; all steps of an image are
    scored in batched forward passes of at most ``chunk`` images. Pixels of
    equal saliency go in one fixed random order (from ``seed``): in raster
    order, a map's flat parts (Grad-CAM's zeros, say) would be deleted from
    the top of the image down. ``deterministic``: the same curves bit for
    bit every time (see :func:`deepinside.attribute`).
    """
    blurred = gaussian_blur(images, blur_sigma)
    # Maps and targets may live elsewhere (a random baseline on the CPU): rank where the images are.
    maps, classes = maps.to(images.device), torch.as_tensor(targets).tolist()
    shuffle = torch.randperm(maps[0].numel(), generator=torch.Generator().manual_seed(seed)).to(images.device)
    deletion, insertion = [], []
    with scoring(model, images, deterministic or None) as (score, layout), torch.no_grad():
        for image, blur, saliency_map, target in zip(images, blurred, maps, classes):
            # rank[p] = position of pixel p in most-salient-first order
            order = shuffle[saliency_map.flatten()[shuffle].argsort(descending=True, stable=True)]
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=order.device)
            rank = rank.view(1, 1, *saliency_map.shape)
            counts = torch.linspace(0, order.numel(), steps + 1, device=images.device).round()
            curves: dict[str, list[torch.Tensor]] = {"deletion": [], "insertion": []}
            for lo in range(0, steps + 1, chunk):
                shown = (rank < counts[lo : lo + chunk].view(-1, 1, 1, 1)).to(images.dtype)  # (n, 1, H, W)
                batches = {
                    "deletion": image[None] * (1 - shown),
                    "insertion": blur[None] * (1 - shown) + image[None] * shown,
                }
                for kind, batch in batches.items():
                    curves[kind].append(score(layout(batch)).softmax(1)[:, target])
            deletion.append(torch.cat(curves["deletion"]))
            insertion.append(torch.cat(curves["insertion"]))
    return Curves(torch.stack(deletion), torch.stack(insertion))


def random_maps(shape: torch.Size, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Maps of uniform noise: the random-order baseline."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator).to(device)
