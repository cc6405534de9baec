"""Objectives by hand, and the paper preset: its steps and its effect on the built-in model."""

from __future__ import annotations

import math

import pytest
import torch

from deepinside.errors import DeepInsideError
from deepinside.visualization import objectives as O
from deepinside.visualization import presets, visualize_class

from .conftest import HALF, linear_model


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
