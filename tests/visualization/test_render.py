"""The render loop: seeds, views, windows, averaging, the early stop, failures and bad input."""

from __future__ import annotations

import dataclasses
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepinside.errors import DeepInsideError
from deepinside.visualization import Preset, param, presets, visualize_class
from deepinside.visualization.early_stop import EarlyStop
from deepinside.visualization.optim import Adam, GradientAscent
from deepinside.visualization.render import render_classes as render_loop

from .conftest import HALF, conv_model, linear_model, tiny_default


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
    # From step 1 instead: 2d, 2.5d, 3.25d, 4.125d, 5.0625d.
    early = dataclasses.replace(ascent, steps=6, average=0.5, average_from=1)
    from_one = visualize_class(model, [2], preset=early, preprocessing=HALF, size=16)
    assert torch.allclose(from_one.images, 0.5 + 0.5 * 5.0625 * d, atol=1e-6)
    for bad, name in (
        ({"average": 1.0}, "average"),
        ({"average_from": -1}, "average"),
        ({"late_from": -2}, "late"),
    ):
        with pytest.raises(DeepInsideError, match=name):
            visualize_class(
                model, [2], preset=dataclasses.replace(ascent, **bad), preprocessing=HALF, size=16
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


class Smooth(nn.Module):
    """Class 0 scores the image's smoothness (minus its pixel-to-pixel contrast), class 1 a constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contrast = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
        return torch.stack([4 - 20 * contrast, torch.zeros_like(contrast)], dim=1)


def test_early_stop_needs_the_picture_as_saved_to_pass_too():
    # A one-pixel checkerboard is smooth once blurred, not as it is: the
    # saved picture would fall short of the probability, so it is not done.
    rule = EarlyStop(probability=0.9)
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    pixels = torch.stack([checker.float(), torch.full((16, 16), 0.5)])[:, None].expand(2, 3, 16, 16)
    blurred = F.interpolate(
        F.interpolate(pixels, scale_factor=0.5, mode="bilinear", antialias=True),
        size=(16, 16),
        mode="bilinear",
    )
    assert bool((Smooth()(HALF.normalize(blurred)).softmax(1)[:, 0] > 0.9).all())  # the blur alone passes
    assert rule.sure(Smooth(), pixels, torch.tensor([0, 0]), HALF).tolist() == [False, True]


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
    with pytest.raises(DeepInsideError, match="not class scores"):
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
