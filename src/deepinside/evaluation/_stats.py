"""Small statistics for comparing maps: rank correlation and SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension (ties broken by position; maps are continuous)."""
    order = x.argsort(dim=-1)
    ranks = torch.empty_like(order, dtype=torch.float64)
    ranks.scatter_(-1, order, torch.arange(x.shape[-1], dtype=torch.float64, device=x.device).expand_as(order).clone())
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps ``(B, H, W)`` -> ``(B,)``."""
    ra, rb = _ranks(a.flatten(1)), _ranks(b.flatten(1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)


def _unit(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1).double()
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of each pair of maps ``(B, H, W)``,
    each scaled to [0, 1] first; Gaussian window, averaged over the pixels a
    whole window covers (as in Wang et al. and scikit-image) -> ``(B,)``."""
    x, y = _unit(a)[:, None], _unit(b)[:, None]
    coords = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.device)
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, [window // 2] * 4, mode="reflect"), kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    r = window // 2
    return value[..., r:-r, r:-r].flatten(1).mean(1)
