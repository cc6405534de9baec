"""The Fourier parameterisation and its windows."""

from __future__ import annotations

import math

import pytest
import torch

from deepinside.errors import DeepInsideError
from deepinside.visualization import param
from deepinside.visualization import transforms as T

from .conftest import HALF, _moves


def test_fft_parameterisation_starts_grey_is_band_limited_and_makes_rows_alone():
    spec = param.ParamSpec(
        2,
        (16, 20),
        HALF,
        [torch.Generator().manual_seed(i) for i in range(2)],
        torch.device("cpu"),
        torch.float32,
    )
    grey = param.fft(sd=0.0)(spec)
    assert torch.allclose(HALF.denormalize(grey.image_fn()), torch.full((2, 3, 16, 20), 0.5))
    noisy = param.fft(sd=0.01)(spec)
    params, image_fn = noisy
    assert params[0].shape == (2, 3, 16, 11, 2) and image_fn().shape == (2, 3, 16, 20)
    # The image of some rows alone: the same pixels, and a gradient on those rows only.
    rows = torch.tensor([1])
    assert torch.equal(noisy.image(rows), image_fn()[rows])
    (grad,) = torch.autograd.grad(noisy.image(rows).sum(), params)
    assert bool(grad[0].eq(0).all()) and bool(grad[1].ne(0).any())
    f = param.fft_frequencies(16, 20)
    assert f[0, 0] == 0 and f[8, 10] == pytest.approx(math.sqrt(0.5**2 + 0.5**2))


def test_fourier_window_is_the_periodic_picture_moved_bilinearly_before_its_sigmoid():
    gens = [torch.Generator().manual_seed(i) for i in range(4)]
    spec = param.ParamSpec(4, (24, 18), HALF, gens, torch.device("cpu"), torch.float64)
    prm = param.fft(sd=0.5)(spec)
    # Whole, fractional and negative shifts, and windows past the picture's edges.
    shifts = torch.tensor([[3.25, -2.5], [0.0, 0.0], [10.7, 5.1], [-1.9, 20.99]], dtype=torch.float64)
    win = (10, 8)

    def logit(x: torch.Tensor) -> torch.Tensor:  # the picture before its sigmoid (colour-mixed)
        return torch.logit(HALF.denormalize(x))

    periodic = logit(prm.image()).repeat(1, 1, 3, 3)
    want = T.resample(
        periodic, _moves(shifts + torch.tensor([18.0, 24.0], dtype=torch.float64), (72, 54), win), win
    )
    assert torch.allclose(logit(prm.window(None, shifts, win)), want, atol=1e-10)
    whole = torch.tensor([[2.0, 3.0]], dtype=torch.float64).expand(2, 2)
    rows = torch.tensor([3, 1])
    assert torch.allclose(prm.window(rows, whole, win), prm.image(rows)[..., 3:13, 2:10], atol=1e-12)
    small = param.fft(sd=0.5)(param.ParamSpec(1, (6, 5), HALF, gens[:1], torch.device("cpu"), torch.float64))
    assert torch.autograd.gradcheck(lambda s: small.window_of([s], shifts[2:3], (4, 3)), small.params)
    with pytest.raises(DeepInsideError, match="resample"):
        param.pixels()(spec).window(None, shifts, win)


def _maco_spec(size: tuple[int, int], batch: int = 2, seed: int = 0) -> param.ParamSpec:
    gens = [torch.Generator().manual_seed(seed + i) for i in range(batch)]
    return param.ParamSpec(batch, size, HALF, gens, torch.device("cpu"), torch.float64)


@pytest.mark.parametrize("size", [(24, 18), (17, 20), (16, 21)])
def test_maco_picture_keeps_its_natural_magnitude_exactly_whatever_the_phase(size):
    prm = param.maco(decorrelate=False)(_maco_spec(size))
    with torch.no_grad():
        prm.params[0].normal_(0, 10)  # any phase, even and odd sizes
    before_sigmoid = torch.logit(HALF.denormalize(prm.image_fn()))
    magnitude = torch.fft.rfft2(before_sigmoid, norm="ortho").abs()
    assert torch.allclose(magnitude, param.natural_magnitude(*size).expand_as(magnitude), atol=1e-9)
    # The magnitude falls with frequency, as a photo's does, and the mean is grey.
    m = param.natural_magnitude(64, 64)
    assert m[:, 0, 0].eq(0).all() and bool(
        (m[:, 0, 1] > m[:, 0, 8]).all() and (m[:, 0, 8] > m[:, 0, 32]).all()
    )


def test_maco_same_seed_same_picture_and_every_image_its_own_generator():
    first = param.maco()(_maco_spec((20, 20))).image_fn()
    assert torch.equal(first, param.maco()(_maco_spec((20, 20))).image_fn())
    assert not torch.equal(first, param.maco()(_maco_spec((20, 20), seed=5)).image_fn())
    # Row 1 of a batch seeded (0, 1) is row 0 of one seeded (1, ...).
    assert torch.equal(first[1], param.maco()(_maco_spec((20, 20), batch=1, seed=1)).image_fn()[0])


def test_maco_gradients_reach_the_phase_and_its_window_is_the_picture_moved():
    prm = param.maco(contrast=0.5)(_maco_spec((12, 10), batch=1))
    (grad,) = torch.autograd.grad(prm.image_fn()[:, 0].mean(), prm.params)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    assert torch.autograd.gradcheck(lambda p: prm.image_of([p]), prm.params)
    whole = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    assert torch.allclose(prm.window(None, whole, (6, 5)), prm.image()[..., 3:9, 2:7], atol=1e-12)
    with pytest.raises(DeepInsideError, match="contrast"):
        param.maco(contrast=0)
