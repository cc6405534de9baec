"""Robustness transforms: where they resample, windows, translations, random_apply, moved images."""

from __future__ import annotations

import pytest
import torch

from deepinside.errors import DeepInsideError
from deepinside.visualization import objectives as O
from deepinside.visualization import param
from deepinside.visualization import transforms as T
from deepinside.visualization.render import _seen

from .conftest import HALF, _moves


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
