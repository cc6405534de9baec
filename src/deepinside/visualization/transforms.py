"""Robustness: random transforms the image must survive.

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

The images are resampled by :mod:`.resampling`, in a fixed order on CUDA.
**Between-step regularisers** live in :mod:`.regularizers` and are
importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

import torch
import torch.nn.functional as F

from ..errors import DeepInsideError
from .regularizers import BetweenSteps, StepContext, blur, clip_contribution, clip_norm, gaussian_blur
from .resampling import affine_grid, resample, sample_bilinear


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
        return resample(x, self.matrix(_shape(x), ctx), _shape(x)[-2:])

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
        return _product(self.transforms, shape, ctx)


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


def fused(
    transforms: Sequence[Transform], shape: tuple[int, int, int, int], ctx: TransformContext
) -> torch.Tensor | None:
    """The one ``(B, 3, 3)`` matrix of a list of geometric transforms for
    images of ``shape``, as :func:`apply` would resample them; None (and no
    random draws) when the list is empty or holds any other transform."""
    affines = [t for t in transforms if isinstance(t, Affine)]
    if not transforms or len(affines) != len(transforms):
        return None
    return _product(affines, shape, ctx)


def _product(
    transforms: Sequence[Affine], shape: tuple[int, int, int, int], ctx: TransformContext
) -> torch.Tensor:
    """The ``(B, 3, 3)`` product of the matrices of non-empty ``transforms``, in order."""
    matrix = transforms[0].matrix(shape, ctx)
    for t in transforms[1:]:
        matrix = matrix @ t.matrix(shape, ctx)
    return matrix


def _shape(x: torch.Tensor) -> tuple[int, int, int, int]:
    """The shape of a batch of images ``(B, C, H, W)``."""
    b, c, h, w = x.shape
    return b, c, h, w


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
        affines = [t for t in run if isinstance(t, Affine)]
        if affines:  # (the whole run: runs are grouped by being affine)
            # The last affine run resamples straight to the step's size.
            size = ctx.size if i == last_affine else _shape(x)[-2:]
            x = resample(x, _product(affines, _shape(x), ctx), size)
            continue
        for t in run:
            x = t(x, ctx)
    if tuple(x.shape[-2:]) != tuple(ctx.size):
        return F.interpolate(x, size=ctx.size, mode="bilinear", align_corners=False, antialias=True)
    return x


__all__ = [
    "Affine",
    "BetweenSteps",
    "RandomApply",
    "StepContext",
    "Transform",
    "TransformContext",
    "affine_grid",
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
    "sample_bilinear",
    "translations",
]
