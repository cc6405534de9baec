"""Octaves, learning-rate schedules and the Adam update."""

from __future__ import annotations

import pytest
import torch

from deepinside.visualization.optim import Adam, GradientAscent, scheduled
from deepinside.visualization.schedule import octave_sizes as _octave_sizes


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


def test_late_octaves_take_over_from_their_step():
    two = ((0.5, 1), (1.0, 1))
    sizes = _octave_sizes(two, (100, 100), 7, interleave=True, late=((1.0, 1),), late_from=4)
    assert sizes == [(50, 50), (100, 100)] * 2 + [(100, 100)] * 3
    # A late phase past the last step changes nothing.
    assert (
        _octave_sizes(two, (100, 100), 4, True, late=((1.0, 1),), late_from=4) == [(50, 50), (100, 100)] * 2
    )


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


def test_the_convincing_preset_shows_the_whole_picture_on_two_steps_in_five():
    from deepinside.visualization import presets

    recipe = presets.convincing()
    sizes = _octave_sizes(recipe.octaves, (224, 224), 20, interleave=recipe.interleave)
    assert sizes.count((224, 224)) == 8 and {(123, 123), (157, 157), (190, 190)} <= set(sizes)
    assert max(sizes[i : i + 5].count((224, 224)) for i in range(16)) == 2, "spread, not in a row"
