"""Saliency against known answers: a hand-worked model, float64 finite
differences, and Captum on the real model and real photos."""

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from torch import nn

import deepinside
from deepinside.attribution import saliency

from ..conftest import agreement


def _tiny_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3)).double()


def test_hand_worked_two_layer_network():
    """S = W2 relu(W1 x + b1) + b2, so dS_c/dx = W1^T (1[W1 x + b1 > 0] * W2[c])."""
    net = _tiny_mlp()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    w1, b1 = net[1].weight.detach().numpy(), net[1].bias.detach().numpy()
    w2 = net[3].weight.detach().numpy()
    targets = [2, 0]
    maps = saliency(net, x, targets)
    for i, c in enumerate(targets):
        active = (w1 @ x[i].flatten().numpy() + b1) > 0
        grad = (w1.T @ (active * w2[c])).reshape(3, 2, 2)
        np.testing.assert_allclose(maps[i].numpy(), np.abs(grad).max(axis=0), rtol=1e-12, atol=1e-15)


def test_linear_model_map_is_the_weight_magnitude():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2, bias=False)).double()
    maps = saliency(net, torch.randn(1, 3, 4, 4, dtype=torch.float64), 1)
    expected = net[1].weight[1].detach().view(3, 4, 4).abs().amax(0)
    torch.testing.assert_close(maps[0], expected, rtol=0, atol=0)


def test_float64_matches_finite_differences_on_a_conv_net():
    torch.manual_seed(1)
    net = (
        nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 3),
        )
        .double()
        .eval()
    )
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    from deepinside.attribution import attribute

    grad = attribute(net, x, 2).raw
    eps = 1e-6
    numeric = torch.zeros_like(x)
    with torch.no_grad():
        for idx in np.ndindex(*x.shape):
            e = torch.zeros_like(x)
            e[idx] = eps
            numeric[idx] = (net(x + e)[0, 2] - net(x - e)[0, 2]) / (2 * eps)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)


def test_matches_captum_on_the_builtin_model_and_real_photos(model, photos):
    x, _ = model.prepare(list(photos.values()))
    with torch.no_grad():
        targets = model(x).argmax(1)
    ours = saliency(model, x)
    ref = Saliency(model).attribute(x, target=targets, abs=True).amax(1)
    for i in range(len(x)):
        _, within, corr = agreement(ours[i], ref[i])
        # A float32 sum reordered through ~50 ReLU6 layers can flip a unit at a
        # kink, so a few pixels may differ more than 1% of the max (Captum's own
        # float32 map does so against float64 on 9% of photos); the map as a whole agrees.
        assert within > 0.999
        assert corr > 0.9999


def test_top1_default_and_named_targets(model, batch):
    with torch.no_grad():
        top = model(batch).argmax(1)
    assert top.tolist() == [285, 967]  # Egyptian cat, espresso
    torch.testing.assert_close(saliency(model, batch), saliency(model, batch, top.tolist()))
    named = saliency(model, batch, ["Egyptian cat", "n07920052"])
    torch.testing.assert_close(named, saliency(model, batch), rtol=1e-4, atol=1e-6)


def test_several_classes_per_image_in_one_call(model, batch):
    maps = saliency(model, batch[:1], [[285, 281, 967]])
    assert maps.shape == (1, 3, 224, 224)
    for k, c in enumerate([285, 281, 967]):
        single = saliency(model, batch[:1], c)[0]
        _, within, corr = agreement(maps[0, k], single)
        assert within > 0.999 and corr > 0.9999


def test_output_shape_dtype_device(model, batch):
    maps = saliency(model, batch)
    assert maps.shape == (2, 224, 224) and maps.dtype == torch.float32 and maps.device == batch.device
    assert bool((maps >= 0).all()) and float(maps.max()) > 0


@pytest.mark.parametrize("corner", [(0, 0), (224, 224), (224, 0)])
def test_the_cat_map_lies_on_the_cat(model, photos, corner):
    """The cat photo pasted in one quadrant of a grey canvas: the model still
    sees an Egyptian cat, and most of the map's mass (25% by chance) lies on it."""
    from PIL import Image

    canvas = Image.new("RGB", (448, 448), (128, 128, 128))
    canvas.paste(photos["chelsea"].resize((224, 224)), corner)
    x, placement = model.prepare([canvas])
    maps = saliency(model, x)
    on_photo = placement[0].to_photo(maps[0])
    left, top = corner
    assert on_photo.shape == (448, 448)
    assert float(on_photo[top : top + 224, left : left + 224].sum() / on_photo.sum()) > 0.5
    torch.testing.assert_close(maps, saliency(model, x, 285))  # its top class is the cat


@pytest.mark.parametrize(
    "target, message",
    [
        (1000, "out of range"),
        ("not a class", "unknown class"),
        ([1, 2, 3], "for 2 images"),
        ([[1], [2, 3]], "same"),
    ],
)
def test_bad_targets(model, batch, target, message):
    with pytest.raises(deepinside.DeepInsideError, match=message):
        saliency(model, batch, target)


def test_non_classifier_output_is_refused_unless_a_score_target_reads_it(batch):
    with pytest.raises(deepinside.DeepInsideError, match="not class scores.*score function as the target"):
        saliency(nn.Conv2d(3, 2, 3), batch)
