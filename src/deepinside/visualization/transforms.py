"""Robustness: random transforms the image must survive, and regularisers
applied to the image between steps.

**Transforms** are differentiable and run on the image before the model at
every step: ``transform(x, ctx) -> x``. The geometric ones (:func:`jitter`,
:func:`random_scale`, :func:`random_rotate`, :func:`random_crop`, and
:func:`random_apply` of them) are :class:`Affine`: the render
loop multiplies consecutive affine transforms into one matrix per image and
resamples the image once, straight to the model's input size for the step
(the octave), so a whole chain costs one ``grid_sample``. Where a step's
chain only moves the images at their own scale (:func:`translations`) and
the parameterisation can move them itself (the Fourier one: a phase shift
of the periodic picture, interpolated before its sigmoid), the loop cuts
the windows out of the parameterisation instead, with no resampling. Any
callable ``(x, ctx) -> x`` can sit in the list (it ends a run of affine
transforms). Each image draws its randomness from its own generator
(``ctx.generators``); draws common to a step's images from ``ctx.shared``.

**Between-step regularisers** (Yosinski et al. 2015) change the raw pixels
after an update, in place: :func:`gaussian_blur` every k steps,
:func:`clip_norm` and :func:`clip_contribution` (set pixels with a small
norm, or a small ``|x * grad|`` contribution, to zero: the training mean).
They need the :func:`~deepinside.visualization.param.pixels`
parameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

import torch
import torch.nn.functional as F

from ..errors import DeepInsideError


@dataclass(frozen=True)
class TransformContext:
    """What a transform may read: the step (0-based), the per-image
    generators, the ``(H, W)`` the model sees at this step, and a generator
    for draws common to all images of the step (None: one seeded with the
    step; the render loop gives each batch the same one, from its seed)."""

    step: int
    generators: Sequence[torch.Generator]
    size: tuple[int, int]
    shared: torch.Generator | None = None

    def common_uniform(self) -> float:
        """One uniform draw in [0, 1) for all the images of the step."""
        shared = self.shared if self.shared is not None else torch.Generator().manual_seed(self.step)
        return float(torch.rand((), generator=shared, device=shared.device, dtype=torch.float64))


Transform = Callable[[torch.Tensor, TransformContext], torch.Tensor]


def _uniform(ctx: TransformContext, low: float, high: float, n: int = 1) -> torch.Tensor:
    """``(B, n)`` uniform draws in [low, high), one row per image from its generator (float64, CPU)."""
    rows = [torch.rand(n, generator=g, device=g.device, dtype=torch.float64).cpu() for g in ctx.generators]
    return low + (high - low) * torch.stack(rows)


def _identities(batch: int) -> torch.Tensor:
    """``(B, 3, 3)`` identity matrices (float64), to fill in per image."""
    return torch.eye(3, dtype=torch.float64).repeat(batch, 1, 1)


class Affine:
    """A random affine map of the image plane. ``matrix(batch_shape, ctx)``
    gives ``(B, 3, 3)`` matrices taking output coordinates to input
    coordinates, both normalised to [-1, 1] (``F.affine_grid``'s convention).
    Calling it applies it alone (one resampling)."""

    name = "affine"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, ctx: TransformContext) -> torch.Tensor:
        return resample(x, self.matrix(tuple(x.shape), ctx), tuple(x.shape[-2:]))

    def __repr__(self) -> str:
        return self.name


class _Jitter(Affine):
    def __init__(self, pixels: float) -> None:
        self.pixels = float(pixels)
        self.name = f"jitter({pixels:g})"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        b, _, h, w = shape
        shift = _uniform(ctx, -self.pixels, self.pixels, 2)  # (B, 2) in pixels (x, y)
        m = _identities(b)
        m[:, 0, 2] = shift[:, 0] * 2 / w
        m[:, 1, 2] = shift[:, 1] * 2 / h
        return m


class _Scale(Affine):
    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)
        self.name = f"random_scale({low:g}, {high:g})"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        b = shape[0]
        # The image is magnified by s: output coordinate p samples input p / s.
        s = _uniform(ctx, self.low, self.high)[:, 0]
        m = _identities(b)
        m[:, 0, 0] = 1 / s
        m[:, 1, 1] = 1 / s
        return m


class _Rotate(Affine):
    def __init__(self, degrees: float) -> None:
        self.degrees = float(degrees)
        self.name = f"random_rotate({degrees:g})"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        b, _, h, w = shape
        a = _uniform(ctx, -self.degrees, self.degrees)[:, 0] * (math.pi / 180)
        cos, sin = a.cos(), a.sin()
        # Rotate in pixel units: normalised coords are scaled by (w/2, h/2).
        m = _identities(b)
        m[:, 0, 0] = cos
        m[:, 0, 1] = -sin * h / w
        m[:, 1, 0] = sin * w / h
        m[:, 1, 1] = cos
        return m


class _Crop(Affine):
    def __init__(self, overhang: float) -> None:
        self.overhang = float(overhang)
        self.name = f"random_crop({overhang:g})" if overhang else "random_crop"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        b, _, h, w = shape
        # The output (ctx.size) shows a window of the image at the image's own
        # scale, at a random place inside it (or up to `overhang` of a window
        # beyond its edges, where the reflected image is seen).
        fy, fx = min(1.0, ctx.size[0] / h), min(1.0, ctx.size[1] / w)
        place = _uniform(ctx, -1.0, 1.0, 2)
        m = _identities(b)
        m[:, 0, 0], m[:, 1, 1] = fx, fy
        m[:, 0, 2] = place[:, 0] * (1 - fx + 2 * self.overhang * fx if fx < 1 else 0.0)
        m[:, 1, 2] = place[:, 1] * (1 - fy + 2 * self.overhang * fy if fy < 1 else 0.0)
        return m


class RandomApply(Affine):
    """See :func:`random_apply`."""

    def __init__(self, transforms: Sequence[Affine], p: float) -> None:
        self.transforms, self.p = tuple(transforms), float(p)
        self.name = f"random_apply([{', '.join(map(repr, self.transforms))}], p={p:g})"

    def matrix(self, shape: tuple[int, int, int, int], ctx: TransformContext) -> torch.Tensor:
        if ctx.common_uniform() >= self.p:
            return _identities(shape[0])
        return fused(self.transforms, shape, ctx)


def random_crop(overhang: float = 0.0) -> Affine:
    """When the model sees fewer pixels than the image has (an octave below
    1), show it a window of that size at the image's own scale, at a random
    place, instead of the whole image shrunk; at full size it does nothing.
    ``overhang`` lets the window reach that fraction of its size beyond the
    image's edges (the image is reflected there), so that the edges are seen
    about as often as the middle."""
    if not 0 <= overhang < 1:
        raise DeepInsideError(f"overhang must be in [0, 1), got {overhang}")
    return _Crop(overhang)


def jitter(pixels: float) -> Affine:
    """Shift each image by a random offset of up to ``pixels`` in x and y."""
    if pixels < 0:
        raise DeepInsideError(f"jitter must be >= 0 pixels, got {pixels}")
    return _Jitter(pixels)


def random_scale(low: float, high: float) -> Affine:
    """Magnify each image by a random factor in ``[low, high]``."""
    if not 0 < low <= high:
        raise DeepInsideError(f"scale range must satisfy 0 < low <= high, got ({low}, {high})")
    return _Scale(low, high)


def random_rotate(degrees: float) -> Affine:
    """Rotate each image by a random angle in ``[-degrees, degrees]``."""
    if degrees < 0:
        raise DeepInsideError(f"rotation must be >= 0 degrees, got {degrees}")
    return _Rotate(degrees)


def random_apply(transforms: Sequence[Affine], p: float = 0.5) -> Affine:
    """Apply the geometric ``transforms`` (in order) at a step with
    probability ``p``, to all images of the step or none (a draw common to
    the batch, so that a batch stays on one path and each image's picture
    still does not depend on its batch-mates). With the Fourier
    parameterisation, a step whose transforms then come to a translation
    costs much less (see :func:`translations`): ``random_apply((random_scale(...),
    random_rotate(...)))`` between jitters keeps scale and rotation on part
    of the steps only."""
    if not 0.0 <= p <= 1.0:
        raise DeepInsideError(f"random_apply needs a probability in [0, 1], got {p!r}")
    if not transforms or not all(isinstance(t, Affine) for t in transforms):
        raise DeepInsideError(
            "random_apply takes geometric transforms (jitter, random_scale, random_rotate, random_crop)"
        )
    return RandomApply(transforms, p)


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
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, c, _ = x.shape
        k, n = index.shape[1:]
        picked = x.gather(2, index.view(b, 1, k * n).expand(b, c, k * n)).view(b, c, k, n)
        ctx.save_for_backward(index, weight)
        ctx.size = x.shape
        return (picked * weight[:, None]).sum(2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
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


def fused(
    transforms: Sequence[Transform], shape: tuple[int, int, int, int], ctx: TransformContext
) -> torch.Tensor | None:
    """The one ``(B, 3, 3)`` matrix of a list of geometric transforms for
    images of ``shape``, as :func:`apply` would resample them; None (and no
    random draws) when the list is empty or holds any other transform."""
    if not transforms or not all(isinstance(t, Affine) for t in transforms):
        return None
    matrix = transforms[0].matrix(shape, ctx)
    for t in transforms[1:]:
        matrix = matrix @ t.matrix(shape, ctx)
    return matrix


def translations(
    matrix: torch.Tensor, source: tuple[int, int], size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which affine maps (``matrix`` ``(B, 3, 3)``, from a ``size`` output to
    a ``source`` image, as :func:`resample` takes them) only move the image
    at its own scale, and by how much: ``(shifts, moved)``, ``shifts`` ``(B,
    2)`` in pixels (x, y: output pixel ``p`` shows the image at ``p +
    shift``), ``moved`` ``(B,)`` where that is all the map does."""
    m = matrix.to("cpu", torch.float64)
    (h, w), (hs, ws) = size, source
    linear = torch.stack([m[:, 0, 0] * ws / w, m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] * hs / h], 1)
    moved = (linear - torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)).abs().amax(1) < 1e-9
    if h > hs or w > ws:
        moved[:] = False
    # Output pixel p sits at (2p + 1) / w - 1; its source pixel is
    # ((m00 x + m02 + 1) ws - 1) / 2, which at m00 = w / ws is p + ws (1 + m02 - m00) / 2.
    shifts = torch.stack([ws / 2 * (1 + m[:, 0, 2] - m[:, 0, 0]), hs / 2 * (1 + m[:, 1, 2] - m[:, 1, 1])], 1)
    return shifts, moved


def apply(transforms: Sequence[Transform], x: torch.Tensor, ctx: TransformContext) -> torch.Tensor:
    """Run ``transforms`` on ``x`` and return it at ``ctx.size``; runs of
    :class:`Affine` transforms are fused into one resampling."""
    runs = [list(run) for _, run in groupby(transforms, key=lambda t: isinstance(t, Affine))]
    last_affine = max((i for i, run in enumerate(runs) if isinstance(run[0], Affine)), default=-1)
    for i, run in enumerate(runs):
        if isinstance(run[0], Affine):
            # The last affine run resamples straight to the step's size.
            size = ctx.size if i == last_affine else tuple(x.shape[-2:])
            x = resample(x, fused(run, tuple(x.shape), ctx), size)
            continue
        for t in run:
            x = t(x, ctx)
    if tuple(x.shape[-2:]) != tuple(ctx.size):
        return F.interpolate(x, size=ctx.size, mode="bilinear", align_corners=False, antialias=True)
    return x


# ---------------------------------------------------------------- between steps


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


__all__ = [
    "Affine",
    "BetweenSteps",
    "RandomApply",
    "StepContext",
    "Transform",
    "TransformContext",
    "apply",
    "blur",
    "clip_contribution",
    "clip_norm",
    "fused",
    "gaussian_blur",
    "jitter",
    "random_apply",
    "random_crop",
    "random_rotate",
    "random_scale",
    "resample",
    "translations",
]
