"""Bilinear resampling of images at affine maps, with a fixed-order gradient on CUDA.

``F.grid_sample``'s backward adds each pixel's gradient atomically on CUDA,
so two runs with one seed differ; here the gradient is added with a sorted
``index_put_`` instead, so the same seed gives the same pictures bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def resample(
    x: torch.Tensor, matrix: torch.Tensor, size: tuple[int, int], padding: str = "reflection"
) -> torch.Tensor:
    """Sample ``x`` ``(B, C, H, W)`` at the affine ``matrix`` ``(B, 3, 3)`` onto ``size``, bilinearly.
    On CUDA the gradient is added up in a fixed order (:func:`sample_bilinear`)."""
    grid = affine_grid(matrix.to(device=x.device, dtype=x.dtype), size)
    if x.is_cuda and padding in ("reflection", "border") and not grid.requires_grad:
        return sample_bilinear(x, grid, padding)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def sample_bilinear(x: torch.Tensor, grid: torch.Tensor, padding: str = "reflection") -> torch.Tensor:
    """``F.grid_sample(x, grid, "bilinear", padding, align_corners=False)`` for
    ``reflection`` or ``border`` padding, up to float round-off, with a
    backward pass that adds each pixel's gradient in a fixed order:
    ``index_put_`` with ``accumulate`` sorts the indices on CUDA. (grid_sample's
    backward adds atomically there, so two runs with one seed differ.) The
    gradient reaches ``x`` only, not the grid."""
    b, c, h, w = x.shape
    index, weight = _corners(grid.detach(), h, w, padding)
    out = _GatherCorners.apply(x.reshape(b, c, h * w), index, weight.to(x.dtype))
    return out.view(b, c, *grid.shape[1:3])


def _corners(grid: torch.Tensor, h: int, w: int, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The four neighbours of each sampling point: flat pixel indices and
    bilinear weights, each ``(B, 4, N)``, by grid_sample's coordinate rules
    (in float32 at least, as grid_sample computes them; a NaN point samples
    the first pixel instead of indexing out of bounds)."""
    if grid.dtype in (torch.float16, torch.bfloat16):
        grid = grid.float()

    def pixel(coord: torch.Tensor, n: int) -> torch.Tensor:
        p = ((coord + 1) * n - 1) / 2
        if padding == "reflection":  # mirror about the outer pixel edges, -0.5 and n - 0.5
            p = (p + 0.5).abs()
            flips, extra = torch.div(p, n, rounding_mode="floor"), torch.fmod(p, n)
            p = torch.where(flips % 2 == 0, extra - 0.5, n - extra - 0.5)
        return p.nan_to_num(0.0).clamp(0, n - 1)

    px, py = pixel(grid[..., 0].flatten(1), w), pixel(grid[..., 1].flatten(1), h)
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp_max(w - 1), (y0 + 1).clamp_max(h - 1)  # weight 0 where clamped
    index = torch.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], 1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    return index, weight


class _GatherCorners(torch.autograd.Function):
    """``out[b, c, n] = sum_k weight[b, k, n] * x[b, c, index[b, k, n]]``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        b, c, _ = x.shape
        k, n = index.shape[1:]
        picked = x.gather(2, index.view(b, 1, k * n).expand(b, c, k * n)).view(b, c, k, n)
        ctx.save_for_backward(index, weight)
        ctx.size = x.shape
        return (picked * weight[:, None]).sum(2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        index, weight = ctx.saved_tensors
        b, c, hw = ctx.size
        # Whole colour vectors go to each pixel: a third of the keys to sort.
        flat = (torch.arange(b, device=index.device).view(b, 1, 1) * hw + index).flatten()
        parts = (grad.transpose(1, 2)[:, None] * weight[..., None]).reshape(-1, c)  # (B*4*N, C)
        out = grad.new_zeros(b * hw, c).index_put_((flat,), parts, accumulate=True)
        return out.view(b, hw, c).transpose(1, 2), None, None


def affine_grid(matrix: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.affine_grid(matrix[:, :2], (B, C, *size), align_corners=False)``,
    by broadcasting: ``(B, H, W, 2)`` sampling coordinates. (affine_grid's
    own batched matmul with an inner size of 3 costs as much as the
    resampling's forward pass.)"""
    h, w = size
    xs = torch.arange(w, device=matrix.device, dtype=matrix.dtype).mul_(2 / w).add_(1 / w - 1)
    ys = torch.arange(h, device=matrix.device, dtype=matrix.dtype).mul_(2 / h).add_(1 / h - 1)[:, None]
    m = matrix[:, :2, :, None, None]  # (B, 2 output coordinates, 3 weights, 1, 1)
    return (m[:, :, 0] * xs + m[:, :, 1] * ys + m[:, :, 2]).permute(0, 2, 3, 1)


__all__ = ["affine_grid", "resample", "sample_bilinear"]
