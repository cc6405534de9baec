"""Small statistics for comparing maps: rank correlation and SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension, tied values sharing the mean of their
    positions (Grad-CAM and guided maps have large runs of equal values)."""
    values, order = x.sort(dim=-1)
    n = x.shape[-1]
    pos = torch.arange(n, device=x.device).expand_as(order)
    first = torch.ones_like(order, dtype=torch.bool)
    first[..., 1:] = values[..., 1:] != values[..., :-1]
    last = torch.ones_like(first)
    last[..., :-1] = first[..., 1:]
    # Each run of equal values spans [start, end]: its first and last sorted position.
    start = torch.where(first, pos, 0).cummax(-1).values
    end = torch.where(last, pos, n).flip(-1).cummin(-1).values.flip(-1)
    ranks = torch.empty(order.shape, dtype=torch.float64, device=x.device)
    return ranks.scatter_(-1, order, (start + end).double() / 2)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation (average ranks for ties) of each pair of maps
    ``(B, H, W)`` -> ``(B,)``. A constant map ranks nothing above anything
    else: its correlation with any map is 0."""
    fa, fb = a.flatten(1), b.flatten(1)
    ra, rb = _ranks(fa), _ranks(fb)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    rho = (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)
    constant = (fa == fa[:, :1]).all(1) | (fb == fb[:, :1]).all(1)
    return rho.masked_fill(constant, 0.0)


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
