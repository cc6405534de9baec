"""Regularisers applied to the raw pixels between steps (Yosinski et al. 2015).

They change the pixels after an update, in place: :func:`gaussian_blur`
every k steps, :func:`clip_norm` and :func:`clip_contribution` (set pixels
with a small norm, or a small ``|x * grad|`` contribution, to zero: the
training mean). They need the :func:`~deepinside.visualization.param.pixels`
parameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DeepInsideError


@dataclass(frozen=True)
class StepContext:
    """What a between-step regulariser may read: the step just taken
    (0-based), the pixels' gradient at it, and which images are still optimised."""

    step: int
    grad: torch.Tensor
    alive: torch.Tensor


BetweenSteps = Callable[[torch.Tensor, StepContext], None]


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflected borders."""
    k = _gaussian_kernel(sigma, x.device, x.dtype)
    r = k.numel() // 2
    c = x.shape[1]
    x = F.pad(x, (r, r, 0, 0), mode="reflect" if r < x.shape[-1] else "replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, (0, 0, r, r), mode="reflect" if r < x.shape[-2] else "replicate")
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def gaussian_blur(sigma: float, every: int = 4) -> BetweenSteps:
    """Blur the image with a Gaussian of ``sigma`` pixels every ``every`` steps."""
    if sigma <= 0 or every < 1:
        raise DeepInsideError(f"blur needs sigma > 0 and every >= 1, got sigma={sigma}, every={every}")

    def op(x: torch.Tensor, ctx: StepContext) -> None:
        if (ctx.step + 1) % every == 0:
            x.copy_(torch.where(ctx.alive.view(-1, 1, 1, 1), blur(x, sigma), x))

    return op


def _zero_below(x: torch.Tensor, measure: torch.Tensor, percentile: float, alive: torch.Tensor) -> None:
    flat = measure.flatten(1).float()
    cut = torch.quantile(flat, percentile / 100.0, dim=1).to(measure.dtype).view(-1, 1, 1)
    keep = (measure >= cut) | ~alive.view(-1, 1, 1)
    x.mul_(keep[:, None].to(x.dtype))


def clip_norm(percentile: float) -> BetweenSteps:
    """Set pixels whose colour-vector norm is below the ``percentile`` of the
    image's norms to zero (the training mean)."""
    _check_percentile(percentile)
    return lambda x, ctx: _zero_below(x, x.norm(dim=1), percentile, ctx.alive)


def clip_contribution(percentile: float) -> BetweenSteps:
    """Set pixels whose contribution ``|sum_channel x * grad|`` to the score is
    below the ``percentile`` of the image's contributions to zero."""
    _check_percentile(percentile)
    return lambda x, ctx: _zero_below(x, (x * ctx.grad).sum(1).abs(), percentile, ctx.alive)


def _check_percentile(p: float) -> None:
    if not 0 <= p < 100:
        raise DeepInsideError(f"clipping percentile must be in [0, 100), got {p}")


__all__ = ["BetweenSteps", "StepContext", "blur", "clip_contribution", "clip_norm", "gaussian_blur"]
