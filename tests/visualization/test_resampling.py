"""Fixed-order resampling: grid_sample with a gradient added in a fixed order, and what holds on CUDA."""

from __future__ import annotations

import copy

import pytest
import torch

import deepinside
from deepinside.visualization import transforms as T
from deepinside.visualization import visualize_class

from ..conftest import agreement
from .conftest import tiny_default


@pytest.mark.parametrize("padding", ["reflection", "border"])
def test_fixed_order_resampling_is_grid_sample_with_its_gradient(padding):
    # Shifted and scaled far enough that the reflection folds back more than once.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 17, 23, dtype=torch.float64, generator=gen, requires_grad=True)
    m = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    m[:, :2, :2] += 0.6 * torch.randn(3, 2, 2, dtype=torch.float64, generator=gen)
    m[:, :2, 2] = 1.5 * torch.randn(3, 2, dtype=torch.float64, generator=gen)
    grid = T.affine_grid(m, (11, 29))
    want = torch.nn.functional.grid_sample(
        x, grid, mode="bilinear", padding_mode=padding, align_corners=False
    )
    got = T.sample_bilinear(x, grid, padding)
    u = torch.randn(want.shape, dtype=torch.float64, generator=gen)
    (g_want,) = torch.autograd.grad((want * u).sum(), x)
    (g_got,) = torch.autograd.grad((got * u).sum(), x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_got, g_want, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda y: T.sample_bilinear(y, grid[:1, :3, :4], padding), (x[:1].detach().requires_grad_(),)
    )
    # One-pixel-wide images, points on the edges, and half precision (coordinates in float32).
    for shape in ((2, 3, 1, 5), (2, 3, 4, 1)):
        y = torch.randn(shape, dtype=torch.float64, generator=gen)
        edges = torch.tensor([-1.0, 1.0, 0.3, -3.2], dtype=torch.float64)
        g = torch.stack(torch.meshgrid(edges, edges, indexing="xy"), -1).expand(2, 4, 4, 2)
        want = torch.nn.functional.grid_sample(
            y, g, mode="bilinear", padding_mode=padding, align_corners=False
        )
        torch.testing.assert_close(T.sample_bilinear(y, g, padding), want, rtol=0, atol=1e-12)
    half = T.sample_bilinear(x.detach().half(), grid.half(), padding)
    want = torch.nn.functional.grid_sample(
        x.detach().float(), grid.half().float(), padding_mode=padding, align_corners=False
    )
    torch.testing.assert_close(half.float(), want, rtol=0, atol=2e-2)
    # A NaN point samples a pixel rather than indexing out of bounds (fatal on a GPU).
    assert T.sample_bilinear(x.detach(), torch.full_like(grid, float("nan")), padding).isfinite().all()


def test_class_models_leave_cudnn_out_on_cuda_and_the_callers_flag_as_it_was():
    from deepinside._core.gradients import repeatable_scoring
    from deepinside._core.precision import cuda_flags
    from deepinside.visualization import render

    # Same seed, same pictures on a GPU: the render loop takes the repeatable path.
    assert render.scoring is repeatable_scoring
    with cuda_flags(torch.device("cuda"), deterministic=True):  # only flags: no GPU needed
        assert not torch.backends.cudnn.enabled
    assert torch.backends.cudnn.enabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fixed_order_resampling_on_a_gpu_is_grid_sample():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 64, 64, generator=gen).cuda()
    m = torch.eye(3).repeat(4, 1, 1)
    m[:, :2, :2] += 0.3 * torch.randn(4, 2, 2, generator=gen)
    grid = T.affine_grid(m.cuda(), (48, 48))
    want = torch.nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    torch.testing.assert_close(T.sample_bilinear(x, grid), want, rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_same_seed_same_pictures_bit_for_bit_on_a_gpu(model):
    gpu = copy.deepcopy(model).cuda()
    kw = dict(preset=tiny_default(steps=12), size=96, device="cuda", seed=3)
    a, b = visualize_class(gpu, [0, 1, 2], **kw), visualize_class(gpu, [0, 1, 2], **kw)
    assert a.images.device.type == "cuda"
    assert torch.equal(a.images, b.images) and torch.equal(a.log.scores, b.log.scores)
    assert torch.backends.cudnn.enabled  # the caller's setting is back


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_saliency_on_a_gpu_is_the_cpus_up_to_round_off(model, batch):
    on_cpu = deepinside.saliency(model, batch)
    on_gpu = deepinside.saliency(copy.deepcopy(model).cuda(), batch.cuda()).cpu()
    # Float32 round-off: a rectifier near its kink can open on one and not the
    # other, moving a few pixels by up to 0.8% of the maximum (H100, measured).
    worst, within_1_percent, correlation = agreement(on_gpu, on_cpu)
    assert worst < 0.02 and within_1_percent > 0.9999 and correlation > 0.9999
