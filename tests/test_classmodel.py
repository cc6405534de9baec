"""Class model visualisation: objectives worked out by hand, the algebra,
reproducibility, the caller's model untouched, failures kept per class, the
command line. Tiny hand-built models keep it fast; the built-in model checks
that the paper's recipe raises the class score."""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import math
import sys
import warnings

import pytest
import torch
from torch import nn

import deepinside
from deepinside.cli import classmodel_cmd
from deepinside.errors import DeepInsideError
from deepinside.visualization import Preset, param, presets, visualize_class
from deepinside.visualization import objectives as O
from deepinside.visualization import transforms as T
from deepinside.visualization.early_stop import EarlyStop
from deepinside.visualization.optim import Adam, GradientAscent, scheduled
from deepinside.visualization.render import _seen
from deepinside.visualization.render import render_classes as render_loop
from deepinside.visualization.schedule import octave_sizes as _octave_sizes

from .conftest import agreement

HALF = deepinside.Preprocessing(input_size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def linear_model(classes: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, classes))


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 4),
    )


def tiny_default(steps: int = 6) -> Preset:
    return dataclasses.replace(presets.default(), steps=steps, octaves=((0.5, 0.5), (1.0, 0.5)))


# ---------------------------------------------------------------- objectives


def _state(scores, image, targets) -> O.State:
    return O.State(torch.tensor(scores, dtype=torch.float64), image, torch.tensor(targets))


def test_objectives_by_hand_and_their_algebra():
    image = torch.zeros(2, 3, 2, 2, dtype=torch.float64)
    image[0, 0] = torch.tensor([[1.0, 2.0], [4.0, 0.0]])  # TV: dx = 2 - 1, dy = 4 - 1
    image[1, 2, 1, 1] = -3.0
    s = _state([[1.0, 2.0, 3.0], [0.0, 0.0, math.log(2.0)]], image, [2, 0])
    assert torch.allclose(O.class_logit()(s), torch.tensor([3.0, 0.0], dtype=torch.float64))
    assert torch.allclose(O.class_logit(1)(s), torch.tensor([2.0, 0.0], dtype=torch.float64))
    p0 = math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3))
    assert torch.allclose(O.class_probability()(s), torch.tensor([p0, 1 / 4], dtype=torch.float64))
    assert torch.allclose(
        O.class_log_probability()(s), torch.tensor([math.log(p0), math.log(1 / 4)], dtype=torch.float64)
    )
    assert torch.allclose(O.l2()(s), torch.tensor([1 + 4 + 16, 9.0], dtype=torch.float64))
    assert torch.allclose(O.l1()(s), torch.tensor([7.0, 3.0], dtype=torch.float64))
    assert torch.allclose(O.total_variation()(s), torch.tensor([1.0 + 9.0, 0.0], dtype=torch.float64))

    combo = O.class_logit() - 0.5 * O.l2() + 2 * O.l1() - O.total_variation() / 2
    expected = torch.tensor([3 - 10.5 + 14 - 5, 0 - 4.5 + 6 - 0], dtype=torch.float64)
    assert torch.allclose(combo(s), expected)
    assert torch.allclose((-O.class_logit())(s), -O.class_logit()(s))
    assert torch.allclose((O.l1() * 3)(s), 3 * O.l1()(s))
    assert combo.name == "class_logit - 0.5 * l2 + 2 * l1 - 0.5 * total_variation"
    with pytest.raises(TypeError):
        O.class_logit() + 1.0  # type: ignore[operator]
    with pytest.raises(DeepInsideError, match="out of range"):
        O.class_logit(7)(s)
    with pytest.raises(DeepInsideError, match="unknown objective"):
        O.class_objective("loss")


def test_objective_gradient_matches_autograd_in_float64():
    image = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    obj = O.total_variation(1.5) + 0.1 * O.l2()

    def f(x):
        return obj(O.State(torch.zeros(2, 3, dtype=torch.float64), x, torch.zeros(2, dtype=torch.long))).sum()

    assert torch.autograd.gradcheck(f, (image,))


def test_paper_steps_are_the_hand_computed_gradient_ascent():
    """S_c(I) = w_c . I + b_c, so each step is I <- I + lr (w_c - 2 lam I), from I = 0."""
    model = linear_model()
    lam, lr, c = 0.05, 0.3, 2
    out = visualize_class(
        model, [c], preset=presets.paper(lam=lam, lr=lr, steps=2), preprocessing=HALF, size=16
    )
    w, b = model[1].weight[c].detach().view(3, 16, 16), float(model[1].bias[c].detach())
    i1 = lr * w
    i2 = i1 + lr * (w - 2 * lam * i1)
    assert torch.allclose(out.images[0], (0.5 * i2 + 0.5).clamp(0, 1), atol=1e-6)
    # The log: S_c and the objective before each step (step 1 is the zero image).
    assert out.log.scores[0, 0] == pytest.approx(b, abs=1e-5)
    assert out.log.scores[0, 1] == pytest.approx(float((w * i1).sum()) + b, rel=1e-5)
    assert out.log.objective[0, 1] == pytest.approx(
        float((w * i1).sum()) + b - lam * float(i1.pow(2).sum()), rel=1e-5
    )
    assert out.log.objective_name == "class_logit - 0.05 * l2"


def test_paper_preset_raises_the_class_score_of_the_builtin_model(model):
    out = visualize_class(model, ["goldfish", "space shuttle"], preset="paper", steps=6, size=96)
    with torch.no_grad():
        zero = model.eval()(torch.zeros(1, 3, 96, 96))[0, out.targets]
    assert out.log.scores[:, 0].float() == pytest.approx(zero.double().float(), abs=1e-3)  # starts from zero
    assert bool((out.log.scores[:, -1] > out.log.scores[:, 0] + 4).all())  # before the last step
    assert bool((out.final_scores > zero.double() + 1).all())  # after it, clipped to valid pixels
    assert (
        out.images.shape == (2, 3, 96, 96) and 0 <= float(out.images.min()) and float(out.images.max()) <= 1
    )


# ------------------------------------------------------- parts of the recipe


def test_transforms_resample_exactly_where_they_should():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float64).view(2, 3, 6, 6)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64).expand(
        2, 3, 3
    )
    assert torch.allclose(T.resample(x, quarter, (6, 6)), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-9)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    ctx = T.TransformContext(0, gens, (6, 6))
    identity = [T.jitter(0), T.random_scale(1, 1), T.random_rotate(0), T.random_crop()]
    assert torch.allclose(T.apply(identity, x, ctx), x, atol=1e-9)
    half = T.apply([], x, T.TransformContext(0, gens, (3, 3)))
    assert half.shape == (2, 3, 3, 3)
    # A transform after the last affine one sees the step's size: the affine run resampled straight to it.
    seen = []
    T.apply(
        [T.random_crop(), lambda y, c: seen.append(tuple(y.shape[-2:])) or y],
        x,
        T.TransformContext(0, gens, (4, 4)),
    )
    assert seen == [(4, 4)]
    # The sampling grid is torch's affine_grid, built more cheaply.
    m = torch.randn(3, 3, 3, dtype=torch.float64)
    for size in ((5, 7), (224, 123)):
        want = torch.nn.functional.affine_grid(m[:, :2], [3, 1, *size], align_corners=False)
        assert torch.allclose(T.affine_grid(m, size), want, atol=1e-12)
    # Between-step blur keeps a constant image and frozen images.
    const = torch.full((2, 3, 8, 8), 0.7)
    T.gaussian_blur(1.0, every=1)(
        const, T.StepContext(0, torch.zeros_like(const), torch.tensor([True, False]))
    )
    assert torch.allclose(const, torch.full_like(const, 0.7))


def test_windows_stay_inside_or_overhang_by_what_was_asked():
    gens = [torch.Generator().manual_seed(i) for i in range(200)]
    ctx = T.TransformContext(0, gens, (70, 70))  # a 0.7 window of a 100 px image
    inside = T.random_crop().matrix((200, 3, 100, 100), ctx)
    over = T.random_crop(overhang=0.25).matrix((200, 3, 100, 100), ctx)
    assert torch.allclose(inside[:, 0, 0], torch.full((200,), 0.7, dtype=torch.float64))
    shift_in, shift_over = inside[:, :2, 2].abs().max(), over[:, :2, 2].abs().max()
    # Normalised units: the image spans [-1, 1], the window 1.4; inside, the centre moves up to 0.3;
    # overhanging by a quarter of the window (0.35), up to 0.65.
    assert 0.28 < shift_in <= 0.3 and 0.6 < shift_over <= 0.65
    with pytest.raises(DeepInsideError, match="overhang"):
        T.random_crop(overhang=1.0)


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


def _moves(shifts: torch.Tensor, source: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Affine matrices (resample's convention) that show a ``size`` window of
    a ``source`` image at its own scale, output pixel p at p + shift."""
    (h, w), (hs, ws) = size, source
    m = torch.eye(3, dtype=torch.float64).repeat(len(shifts), 1, 1)
    m[:, 0, 0], m[:, 1, 1] = w / ws, h / hs
    m[:, 0, 2] = 2 * shifts[:, 0] / ws - 1 + w / ws
    m[:, 1, 2] = 2 * shifts[:, 1] / hs - 1 + h / hs
    return m


def test_translations_are_found_and_measured():
    gens = [torch.Generator().manual_seed(i) for i in range(16)]
    ctx = T.TransformContext(0, gens, (70, 70))
    shape = (16, 3, 100, 100)
    crop = T.fused([T.jitter(0), T.random_crop()], shape, ctx)
    shifts, moved = T.translations(crop, (100, 100), (70, 70))
    assert bool(moved.all()) and 0 <= float(shifts.min()) and float(shifts.max()) <= 30
    # On a ramp, resampling shows each output pixel's source position: p + shift.
    ramp = torch.arange(100, dtype=torch.float64)
    ramps = torch.stack([ramp.expand(100, 100), ramp[:, None].expand(100, 100)]).expand(16, 2, 100, 100)
    seen = T.resample(ramps, crop, (70, 70))
    assert torch.allclose(seen[:, :, 0, 0], shifts, atol=1e-9)
    assert torch.allclose(seen[:, :, 5, 9], shifts + torch.tensor([9.0, 5.0], dtype=torch.float64), atol=1e-9)
    assert torch.allclose(
        T.translations(_moves(shifts, (100, 100), (70, 70)), (100, 100), (70, 70))[0], shifts
    )
    for warp in (T.random_scale(0.9, 1.1), T.random_rotate(5)):
        assert not bool(
            T.translations(T.fused([warp, T.random_crop()], shape, ctx), (100, 100), (70, 70))[1].any()
        )
    # A window larger than the image (an octave above 1) is never cut out of it.
    assert not bool(T.translations(_moves(shifts, (100, 100), (120, 120)), (100, 100), (120, 120))[1].any())
    assert T.fused([], shape, ctx) is None and T.fused([T.jitter(1), lambda x, c: x], shape, ctx) is None


def test_random_apply_applies_to_a_whole_step_with_its_probability():
    def ctx(step: int, shared: torch.Generator | None = None) -> T.TransformContext:
        return T.TransformContext(
            step, [torch.Generator().manual_seed(i) for i in range(4)], (32, 32), shared
        )

    shape = (4, 3, 32, 32)
    chain = (T.random_scale(0.8, 1.2), T.random_rotate(20))
    some = T.random_apply(chain, p=0.3)
    shared = torch.Generator().manual_seed(5)
    applied = []
    for step in range(300):
        m = some.matrix(shape, ctx(step, shared))
        kept = (m - torch.eye(3, dtype=torch.float64)).abs().amax((1, 2)) == 0
        assert bool(kept.all()) or not bool(kept.any())  # all images of a step, or none
        applied.append(not bool(kept.any()))
        if applied[-1]:  # the chain's own matrices, from each image's own draws
            own = ctx(step)
            assert torch.equal(m, chain[0].matrix(shape, own) @ chain[1].matrix(shape, own))
    assert 0.2 < sum(applied) / 300 < 0.4
    # Without a shared generator, the step seeds the draw.
    assert torch.equal(some.matrix(shape, ctx(7)), some.matrix(shape, ctx(7)))
    assert bool(
        T.translations(T.random_apply(chain, p=0.0).matrix(shape, ctx(0)), (32, 32), (32, 32))[1].all()
    )
    assert repr(T.random_apply(chain)) == "random_apply([random_scale(0.8, 1.2), random_rotate(20)], p=0.5)"
    with pytest.raises(DeepInsideError, match="probability"):
        T.random_apply(chain, p=1.5)
    with pytest.raises(DeepInsideError, match="geometric"):
        T.random_apply([lambda x, c: x])


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


def test_moved_images_are_cut_from_the_picture_and_the_others_resampled():
    spec = param.ParamSpec(
        4, (32, 32), HALF, [torch.Generator() for _ in range(4)], torch.device("cpu"), torch.float64
    )
    prm = param.fft(sd=0.5)(spec)
    rows = torch.tensor([0, 2, 3, 1])
    each = rows.repeat_interleave(2)  # two views of each
    for chain, moves in (
        ([T.jitter(2), T.random_crop()], True),
        ([T.random_rotate(9), T.random_crop()], False),
    ):

        def ctx() -> T.TransformContext:
            return T.TransformContext(0, [torch.Generator().manual_seed(i) for i in range(8)], (20, 20))

        x, pictures = _seen(prm, rows, 2, chain, ctx(), (32, 32))
        matrix = T.fused(chain, (8, 3, 32, 32), ctx())
        shifts, moved = T.translations(matrix, (32, 32), (20, 20))
        assert bool(moved.all()) == moves and not bool(moved.any()) == (not moves)
        want = prm.window(each, shifts, (20, 20)) if moves else T.resample(prm.image(each), matrix, (20, 20))
        assert torch.allclose(x, want, atol=1e-12)
        assert torch.equal(pictures(), prm.image(each)) and pictures() is pictures()
    # Objectives read the whole pictures, made only when asked.
    asked = []
    state = O.State(
        torch.zeros(8, 2), lambda: asked.append(1) or pictures(), torch.zeros(8, dtype=torch.long)
    )
    assert not asked and torch.equal(O.l2()(state), O.l2()(O.State(state.scores, pictures(), state.targets)))
    assert asked == [1]


def test_octaves_schedule_and_learning_rate():
    sizes = _octave_sizes(((0.5, 0.6), (1.0, 0.4)), (224, 200), 10)
    assert sizes == [(112, 100)] * 6 + [(224, 200)] * 4
    assert _octave_sizes((), (32, 32), 3) == [(32, 32)] * 3
    assert scheduled(0.1, "cosine", 0, 10) == pytest.approx(0.1)
    assert scheduled(0.1, "cosine", 9, 10) == pytest.approx(0.01)
    assert scheduled(0.1, "constant", 9, 10) == 0.1


def test_interleaved_octaves_take_turns_in_proportion():
    three = ((0.5, 1), (0.7, 1), (1.0, 1))
    assert _octave_sizes(three, (100, 100), 7, interleave=True) == [(50, 50), (70, 70), (100, 100)] * 2 + [
        (50, 50)
    ]
    uneven = _octave_sizes(((0.5, 3), (1.0, 1)), (100, 100), 8, interleave=True)
    assert uneven.count((100, 100)) == 2 and uneven.index((100, 100)) in (2, 3)
    assert _octave_sizes(((0.5, 1), (1.0, 0)), (100, 100), 4, interleave=True) == [(50, 50)] * 4


def test_adam_ascent_is_torchs_adam_maximising():
    torch.manual_seed(0)
    ours, theirs = torch.randn(2, 5, dtype=torch.float64), None
    theirs = ours.clone().requires_grad_(True)
    reference = torch.optim.Adam([theirs], lr=0.1, maximize=True)
    adam = Adam(0.1)
    state = adam.init([ours])
    for step in range(5):
        g = torch.sin(3 * ours) + ours
        adam.step([ours], [g], state, step, 5)
        theirs.grad = torch.sin(3 * theirs.detach()) + theirs.detach()
        reference.step()
    assert torch.allclose(ours, theirs.detach(), atol=1e-12)
    # Rows left out of `moving` stay exactly where they were; the others move as before.
    for rule in (Adam(0.1), GradientAscent(0.1)):
        x, state = ours.clone(), rule.init([ours])
        rule.step([x], [torch.ones_like(x)], state, 0, 5, moving=torch.tensor([False, True]))
        assert torch.equal(x[0], ours[0]) and torch.allclose(x[1], ours[1] + 0.1)


# ------------------------------------------------------------ the run itself


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


def test_gradients_on_cuda_leave_cudnn_out_and_the_callers_flag_as_it_was():
    from deepinside.attribution._engine import _without_cudnn

    cuda = torch.device("cuda")  # only a flag: no GPU needed
    with _without_cudnn(cuda):
        assert not torch.backends.cudnn.enabled
    assert torch.backends.cudnn.enabled
    with _without_cudnn(torch.device("cpu")):
        assert torch.backends.cudnn.enabled
    # Overlapping blocks (two threads): the flag comes back only when the last one leaves.
    first, second = _without_cudnn(cuda), _without_cudnn(cuda)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not torch.backends.cudnn.enabled
    second.__exit__(None, None, None)
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


def test_same_seed_same_pictures_bit_for_bit_and_batch_independent():
    model = conv_model()
    kw = dict(preset=tiny_default(), preprocessing=HALF, size=16)
    a = visualize_class(model, [0, 1, 2], seed=3, **kw)
    b = visualize_class(model, [0, 1, 2], seed=3, **kw)
    assert torch.equal(a.images, b.images) and torch.equal(a.log.scores, b.log.scores)
    other = visualize_class(model, [0, 1, 2], seed=4, **kw)
    assert not torch.equal(a.images, other.images)
    # A class's picture does not depend on its batch-mates (up to float round-off).
    alone = visualize_class(model, [1], seed=3, batch_size=1, **kw)
    assert torch.allclose(alone.images[0], a.images[1], atol=1e-4)
    gen = visualize_class(model, [0], seed=torch.Generator().manual_seed(9), **kw)
    assert gen.images.shape == (1, 3, 16, 16)


def test_views_average_the_objective_over_random_transforms():
    model = conv_model()
    still = dataclasses.replace(presets.default(), steps=4, transforms=())
    one = visualize_class(model, [0, 3], preset=still, preprocessing=HALF, size=16, seed=1)
    three = visualize_class(
        model, [0, 3], preset=dataclasses.replace(still, views=3), preprocessing=HALF, size=16, seed=1
    )
    # Identical views: the mean is the single view's objective, so the same run.
    assert torch.allclose(one.images, three.images, atol=1e-5)
    assert torch.allclose(one.log.scores, three.log.scores, atol=1e-4)
    moving = dataclasses.replace(tiny_default(), views=2)
    both = visualize_class(model, [0, 3], preset=moving, preprocessing=HALF, size=16, seed=1)
    alone = visualize_class(model, [3], preset=moving, preprocessing=HALF, size=16, seed=1, batch_size=1)
    assert torch.allclose(alone.images[0], both.images[1], atol=1e-4)
    assert not torch.allclose(
        both.images,
        visualize_class(model, [0, 3], preset=tiny_default(), preprocessing=HALF, size=16, seed=1).images,
        atol=1e-3,
    )
    with pytest.raises(DeepInsideError, match="views"):
        visualize_class(model, [0], preset=dataclasses.replace(still, views=0), preprocessing=HALF, size=16)


def test_interleaved_windows_change_size_every_step():
    turns = dataclasses.replace(tiny_default(5), interleave=True)
    out = visualize_class(conv_model(), [0, 3], preset=turns, preprocessing=HALF, size=32, seed=1)
    assert out.log.sizes == [(16, 16), (32, 32)] * 2 + [(16, 16)]
    assert out.images.shape == (2, 3, 32, 32) and bool(torch.isfinite(out.log.scores).all())


def test_average_of_the_second_half_by_hand():
    # A linear model's logit has a constant gradient, so plain ascent from zero
    # puts step k's image at (k + 1) d. Averaged from step 3 of 6 with decay
    # 0.5: 4d, then 4.5d, then 5.25d.
    model = linear_model()
    ascent = Preset(name="t", param=param.pixels(), optimizer=GradientAscent(1e-3), steps=1)
    one = visualize_class(model, [2], preset=ascent, preprocessing=HALF, size=16)
    d = (one.images - 0.5) / 0.5
    averaged = visualize_class(
        model, [2], preset=dataclasses.replace(ascent, steps=6, average=0.5), preprocessing=HALF, size=16
    )
    assert torch.allclose(averaged.images, 0.5 + 0.5 * 5.25 * d, atol=1e-6)
    with pytest.raises(DeepInsideError, match="average"):
        visualize_class(
            model, [2], preset=dataclasses.replace(ascent, average=1.0), preprocessing=HALF, size=16
        )


def _model_state(model: nn.Module) -> dict[str, object]:
    return {
        "training": [m.training for m in model.modules()],
        "grads": [p.grad for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "weights": [t.detach().clone() for t in [*model.parameters(), *model.buffers()]],
        "hooks": [
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
            for m in model.modules()
        ],
    }


@pytest.mark.parametrize("training", [True, False])
def test_the_callers_model_is_left_as_it_was(training):
    model = conv_model().train(training)
    before = _model_state(model)
    with torch.no_grad():  # also works under no_grad
        out = visualize_class(model, [0, 3], preset=tiny_default(3), preprocessing=HALF, size=16)
    after = _model_state(model)
    assert before["training"] == after["training"] and before["requires_grad"] == after["requires_grad"]
    assert after["grads"] == [None] * len(after["grads"]) and before["hooks"] == after["hooks"]
    assert all(torch.equal(u, v) for u, v in zip(before["weights"], after["weights"]))  # BN running stats too
    assert out.images.shape == (2, 3, 16, 16)


class NanAbove(nn.Module):
    """Scores (m, -m, 0) with m the image mean, but NaN once m > 0.3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        scores = torch.stack([m, -m, torch.zeros_like(m)], dim=1)
        return torch.where(m[:, None] > 0.3, torch.full_like(scores, float("nan")), scores)


def test_nan_stops_that_class_only_and_says_so():
    climb = Preset("climb", param.pixels(), Adam(0.1), steps=10)
    with pytest.warns(RuntimeWarning, match="class 0"):
        out = visualize_class(NanAbove(), [0, 1], preset=climb, preprocessing=HALF, size=16)
    assert (
        list(out.failures) == [0]
        and "became NaN or infinite" in out.failures[0]
        and "class 0" in out.failures[0]
    )
    assert 1 <= int(out.log.steps_run[0]) < 10 and int(out.log.steps_run[1]) == 10
    assert bool(out.images.isfinite().all())
    assert float(out.log.scores[1, -1]) > 0.5  # the other class (score -m) went on to the end
    rows = out.log.rows(0)
    assert rows[-1]["score"] is None and all(r["score"] is not None for r in rows[:-1])


class SureOfZero(nn.Module):
    """Scores (20 m, 0, 0.1 m) with m the image mean: class 0 is soon sure, class 2 never."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([20 * m, torch.zeros_like(m), 0.1 * m], dim=1)


def test_early_stop_ends_a_sure_class_with_the_picture_of_that_many_steps():
    rule = EarlyStop(probability=0.9, first=4, every=2)
    climb = Preset("climb", param.pixels(), Adam(0.1), steps=12, early_stop=rule)
    out = visualize_class(SureOfZero(), [0, 2], preset=climb, preprocessing=HALF, size=16)
    stopped = int(out.log.steps_run[0])
    assert stopped in (4, 6, 8, 10) and int(out.log.steps_run[1]) == 12 and not out.failures
    assert float(out.final_probabilities[0]) >= 0.9 and bool(out.log.probabilities[0, stopped:].isnan().all())
    # The same pictures as runs of exactly that many steps, each class alone.
    for k, steps in ((0, stopped), (1, 12)):
        fixed = visualize_class(
            SureOfZero(),
            [[0, 2][k]],
            preset=dataclasses.replace(climb, steps=steps),
            early_stop=False,
            preprocessing=HALF,
            size=16,
        )
        torch.testing.assert_close(out.images[k], fixed.images[0], rtol=0, atol=1e-6)
    if stopped > 4:  # not sure at the check before
        earlier = dataclasses.replace(climb, steps=stopped - 2)
        assert (
            float(
                visualize_class(
                    SureOfZero(), [0], preset=earlier, early_stop=False, preprocessing=HALF, size=16
                ).final_probabilities[0]
            )
            < 0.9
        )
    assert visualize_class(
        SureOfZero(), [0], preset=climb, early_stop=False, preprocessing=HALF, size=16
    ).log.steps_run.tolist() == [12]


@pytest.mark.parametrize(
    "model, targets", [(SureOfZero(), [0, 2]), (NanAbove(), [0, 1])], ids=["early-stop", "nan"]
)
def test_whole_batch_mode_gives_the_pictures_logs_and_failures_of_the_running_rows(
    monkeypatch, model, targets
):
    """On a GPU every class of a batch goes through the network at every step
    (one shape for cuDNN); stopped and failed classes must change nothing."""
    render_module = sys.modules["deepinside.visualization.render"]
    rule = EarlyStop(probability=0.9, first=4, every=2)
    climb = Preset("climb", param.pixels(), Adam(0.1), steps=12, early_stop=rule)
    runs = []
    for whole in (False, True):
        monkeypatch.setattr(render_module, "_keeps_batch_shape", lambda device, whole=whole: whole)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            runs.append(visualize_class(model, targets, preset=climb, preprocessing=HALF, size=16))
    rows, whole = runs
    assert torch.equal(rows.log.steps_run, whole.log.steps_run) and rows.failures == whole.failures
    assert int(rows.log.steps_run.min()) < 12, "a class stopped or failed before the end"
    torch.testing.assert_close(rows.images, whole.images, rtol=0, atol=1e-6)
    torch.testing.assert_close(rows.log.scores, whole.log.scores, equal_nan=True)


class FineTexture(nn.Module):
    """Class 0 scores the image's pixel-to-pixel contrast, class 1 a constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contrast = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
        return torch.stack([20 * contrast, torch.full_like(contrast, 2.0)], dim=1)


def test_early_stop_judges_the_picture_at_a_coarser_scale():
    # A one-pixel checkerboard scores high as it is and loses the class once
    # shrunk to half and enlarged back; broad stripes keep it.
    rule = EarlyStop(probability=0.9)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    stripes = (torch.arange(16)[None, :] // 4) % 2 * torch.ones(16, 1)
    pixels = torch.stack([checker, stripes]).float()[:, None].expand(2, 3, 16, 16)
    scores = FineTexture()(HALF.normalize(pixels))
    assert bool((scores.softmax(1)[:, 0] > 0.99).all())  # both fool it at full scale
    sure = rule.sure(FineTexture(), pixels, torch.tensor([0, 0]), HALF)
    assert sure.tolist() == [False, True]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(probability=0.0), "probability"),
        (dict(probability=1.5), "probability"),
        (dict(scale=0.0), "scale"),
        (dict(first=0), "first"),
        (dict(every=2.5), "every"),
    ],
)
def test_early_stop_refuses_a_rule_that_cannot_work(kwargs, message):
    with pytest.raises(DeepInsideError, match=message):
        EarlyStop(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(targets=["goldfsh"]), "did you mean 'goldfish'"),
        (dict(targets=[1], steps=0), "steps must be"),
        (dict(targets=[1], size=100000), "out of range"),
        (dict(targets=[1], size=4), "out of range"),
        (dict(targets=[1], size=20, steps=1), r"failed on .*20x20.*; try a larger size"),
        (dict(targets=[1], preset="pretty"), "unknown preset"),
        (dict(targets=[1], objective="loss"), "unknown objective"),
        (dict(targets=[]), "no classes"),
        (dict(targets=[5000]), "out of range"),
    ],
)
def test_bad_input_is_one_clear_error(model, kwargs, message):
    targets = kwargs.pop("targets")
    with pytest.raises(DeepInsideError, match=message):
        visualize_class(model, targets, **kwargs)


def test_not_a_classifier_and_out_of_range_class_on_plain_modules():
    with pytest.raises(DeepInsideError, match="not a classifier"):
        visualize_class(nn.Conv2d(3, 4, 3), [0], preset=tiny_default(1), size=16)
    with pytest.raises(DeepInsideError, match="out of range"):
        visualize_class(linear_model(), [7], preset=tiny_default(1), preprocessing=HALF, size=16)


def test_classes_are_checked_before_any_batch_runs(monkeypatch):
    model, chunks = linear_model(), []
    render_module = sys.modules["deepinside.visualization.render"]
    real = render_module._render_chunk
    monkeypatch.setattr(render_module, "_render_chunk", lambda *a, **k: chunks.append(1) or real(*a, **k))
    with pytest.raises(DeepInsideError, match="class 7 is out of range: .* 0 to 4"):
        visualize_class(model, [0, 1, 7], preset=tiny_default(3), preprocessing=HALF, size=16, batch_size=1)
    assert not chunks, "not when the class's batch comes"
    with pytest.raises(DeepInsideError, match="class -1 is out of range"):
        render_loop(
            model,
            [0, -1],
            Preset("one", param.pixels(), GradientAscent(1.0), steps=1),
            presets.paper().objective(),
            preprocessing=HALF,
        )
    with pytest.raises(DeepInsideError, match="2 labels for 1 classes"):
        render_loop(
            linear_model(),
            [0],
            Preset("one", param.pixels(), GradientAscent(1.0), steps=1),
            presets.paper().objective(),
            preprocessing=HALF,
            labels=["a", "b"],
        )


def test_out_of_memory_says_so_and_not_to_enlarge():
    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = linear_model()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.requires_grad:  # the loop's passes, not the set-up's
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 GB")
            return self.inner(x)

    with pytest.raises(DeepInsideError, match="out of memory for 2 16x16 inputs.*smaller batch size"):
        visualize_class(Hungry(), [0, 1], preset=presets.paper(steps=1), preprocessing=HALF, size=16)
    with pytest.raises(DeepInsideError, match="use an index"):
        visualize_class(linear_model(), ["tabby"], preprocessing=HALF, size=16)


def test_probability_objective_is_logged(tmp_path):
    out = visualize_class(
        linear_model(),
        [1, 2],
        preset=presets.paper(steps=3),
        objective="probability",
        preprocessing=HALF,
        size=16,
    )
    assert out.log.objective_name == "class_probability - 0.001 * l2"
    p = out.log.probabilities
    assert bool(((p > 0) & (p < 1)).all()) and bool((p[:, -1] > p[:, 0]).all())


# ------------------------------------------------------------ command line


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deepinside")
    classmodel_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_command_line_writes_pictures_logs_and_a_contact_sheet(tmp_path, capsys):
    out = tmp_path / "out"
    code = _cli(
        ["classmodel", "goldfish", "812", "--steps", "2", "--size", "64", "--out", str(out), "--seed", "1"]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class_index"] for c in summary["classes"]] == [1, 812]
    assert summary["preset"] == "default" and summary["seed"] == 1
    assert (out / "contact_sheet.png").exists() and (out / "0812-space-shuttle.png").exists()
    log = json.loads((out / "0001-goldfish.log.json").read_text())
    assert [s["step"] for s in log["steps"]] == [1, 2] and log["objective"] == "class_logit"
    with open(out / "0001-goldfish.log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]["score"]) == pytest.approx(log["steps"][0]["score"])
    assert "2 of 2 classes rendered" in capsys.readouterr().err
    assert not list(out.glob(".*")), "no temporary files left behind"


def test_command_line_early_stop_is_the_presets_unless_told(tmp_path):
    for flag, expected in (
        ([], presets.default().early_stop),
        (["--early-stop", "off"], None),
        (["--early-stop", "0.5"], dataclasses.replace(presets.default().early_stop, probability=0.5)),
    ):
        out = tmp_path / f"out{len(flag)}{flag[-1] if flag else ''}"
        assert _cli(["classmodel", "goldfish", "--steps", "1", "--size", "64", "--out", str(out), *flag]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["early_stop"] == (dataclasses.asdict(expected) if expected else None)
        assert summary["classes"][0]["steps_run"] == 1


def test_stop_rule_by_probability_keeps_the_presets_checks():
    default, paper = presets.default(), presets.paper()
    assert default.stop_rule(None) is default.early_stop and paper.stop_rule(True) == EarlyStop()
    assert default.stop_rule(False) is None and paper.stop_rule(0.9) == EarlyStop(probability=0.9)
    assert default.stop_rule(0.5) == dataclasses.replace(default.early_stop, probability=0.5)


def test_command_line_refuses_bad_input(tmp_path):
    for bad in (["--steps", "0"], ["--size", "0"], ["--early-stop", "2"], ["--early-stop", "soon"]):
        with pytest.raises(SystemExit) as e:
            _cli(["classmodel", "goldfish", *bad])
        assert e.value.code == 2
    with pytest.raises(DeepInsideError, match="use --all"):
        _cli(["classmodel", "--out", str(tmp_path)])
    with pytest.raises(DeepInsideError, match="not both"):
        _cli(["classmodel", "goldfish", "--all"])
    with pytest.raises(DeepInsideError, match="did you mean"):
        _cli(["classmodel", "goldfsh", "--out", str(tmp_path)])
    with pytest.raises(DeepInsideError, match="out of range"):
        _cli(["classmodel", "goldfish", "--size", "99999", "--out", str(tmp_path)])


def test_comparison_figure_and_contact_sheet_sizes():
    from deepinside.visualization.output import comparison_figure, contact_sheet

    a = visualize_class(linear_model(), [1, 2, 3], preset=presets.paper(steps=1), preprocessing=HALF, size=16)
    fig = comparison_figure([a, a], ["paper", "again"], cell=32)
    assert fig.mode == "RGB" and fig.width > 2 * 32 and fig.height > 3 * 32
    sheet = contact_sheet(a.images, ["one", "two", "three"], columns=2, cell=40)
    assert sheet.size == (2 * 46 + 6, 2 * (40 + 30 + 6) + 6)
    titled = contact_sheet(a.images, ["one", "two", "three"], columns=2, cell=40, title="a long title " * 4)
    assert titled.width == sheet.width and titled.height > sheet.height + 40  # wrapped, not cut off
