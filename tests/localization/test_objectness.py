"""Class-agnostic objectness (the features' first principal component), worked by hand."""

import dataclasses
import math

import torch

from deepinside.localization import LocalizationConfig, localization_maps
from deepinside.localization.objectness import agreeing, first_component


def one_object_features() -> torch.Tensor:
    """Four positions (2 x 2), two channels: the object at the top left is (3, 3),
    the background (0, 0). Centred, the rows are (2.25, 2.25) and three times
    (-0.75, -0.75); the first component is (1, 1) / sqrt 2, so the projections
    are 2.25 sqrt 2 and three times -0.75 sqrt 2 (up to one sign)."""
    f = torch.zeros(1, 2, 2, 2)
    f[0, :, 0, 0] = 3.0
    return f


def test_first_component_by_hand():
    component = first_component(one_object_features())[0]
    expected = torch.tensor([[2.25, -0.75], [-0.75, -0.75]]) * math.sqrt(2)
    sign = 1.0 if component[0, 0] > 0 else -1.0
    torch.testing.assert_close(sign * component, expected)


def test_features_that_do_not_vary_give_no_component():
    assert torch.count_nonzero(first_component(torch.ones(1, 3, 2, 2))) == 0


def test_the_class_map_decides_the_sign():
    component = first_component(one_object_features())[:, None]  # (B, V=1, 2, 2)
    on_object = torch.tensor([[1.0, 0.0], [0.0, 0.0]])[None, None]
    elsewhere = torch.tensor([[0.0, 0.0], [0.0, 1.0]])[None, None]
    for c in (component, -component):  # whatever sign the decomposition gave
        torch.testing.assert_close(agreeing(c, on_object)[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        # A class map away from the object takes the other side: the background, cut at zero.
        torch.testing.assert_close(agreeing(c, elsewhere)[0, 0], torch.tensor([[0.0, 1.0], [1.0, 1.0]]))


def test_views_are_averaged_after_their_own_sign():
    a = first_component(one_object_features())[:, None]
    both = agreeing(torch.cat([a, -a], dim=1), torch.tensor([[1.0, 0.0], [0.0, 0.0]])[None, None])
    torch.testing.assert_close(both[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_objectness_is_mixed_with_the_class_map_over_their_peaks(model, batch):
    targets = torch.tensor([[281, 285], [967, 504]])
    cam = LocalizationConfig("cam", method="grad-cam", scales=(1.0, 1.5), segmentation="threshold")
    plain = localization_maps(model, batch, targets, cam)
    alone = localization_maps(model, batch, targets, dataclasses.replace(cam, objectness=1.0))
    mean = localization_maps(model, batch, targets, dataclasses.replace(cam, objectness=0.5))
    assert alone.shape == plain.shape and bool((alone >= 0).all())
    torch.testing.assert_close(alone.flatten(-2).amax(-1), torch.ones(2, 2))
    peak = plain.flatten(-2).amax(-1)[..., None, None]
    torch.testing.assert_close(mean, 0.5 * plain / peak + 0.5 * alone, rtol=1e-4, atol=1e-5)
