"""The class map carried over feature affinities (a random walk), worked by hand."""

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

import deepinside
from deepinside.localization import ABLATIONS, PRESETS, LocalizationConfig, config_for, localization_maps
from deepinside.localization.affinity import finer_layer, propagate, transition
from deepinside.localization.objectness import feature_maps


def plain_features(model: deepinside.Classifier, x: torch.Tensor, layer: str) -> torch.Tensor:
    """``layer``'s output from the user's own model, hooked: the reference."""
    seen: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        model.scores(x)
    finally:
        handle.remove()
    return seen[-1]


def object_and_background() -> torch.Tensor:
    """A 2 x 2 grid, two channels: the top row looks like an object (1, 0),
    the bottom row like background (0, 1)."""
    f = torch.zeros(1, 2, 2, 2)
    f[0, 0, 0, :] = 1.0
    f[0, 1, 1, :] = 1.0
    return f


def test_transition_by_hand():
    # Alike positions share their rows equally; unlike ones (cosine 0) do not mix.
    half = torch.tensor(
        [[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]
    )
    torch.testing.assert_close(transition(object_and_background(), 8.0)[0], half)


def test_the_power_keeps_only_close_likeness():
    # Descriptors (1, 0) and (1, 1): cosine 1/sqrt 2, so power 2 gives affinity 1/2 against 1 for itself.
    f = torch.tensor([[1.0, 1.0], [0.0, 1.0]])[None, :, None, :]  # (1, C=2, h=1, w=2)
    torch.testing.assert_close(transition(f, 2.0)[0], torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))
    assert float(transition(f, 16.0)[0, 0, 1]) < 0.01


def test_a_position_like_nothing_keeps_its_value():
    f = object_and_background()
    f[0, :, 1, 1] = 0.0
    t = transition(f, 8.0)[0]
    torch.testing.assert_close(t[3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(t.sum(-1), torch.ones(4))


def test_the_map_fills_the_object_and_stays_off_the_background():
    # Evidence at one corner of the object spreads over the object's row only.
    cam = torch.tensor([[1.0, 0.0], [0.0, 0.0]])[None, None]
    walked = propagate(cam, object_and_background(), power=8.0, steps=3)
    torch.testing.assert_close(walked[0, 0], torch.tensor([[0.5, 0.5], [0.0, 0.0]]))


def test_maps_go_down_to_the_feature_grid_and_back():
    # A map on a 4 x 4 input over 2 x 2 features: averaged per cell, walked, upsampled bilinearly.
    cam = torch.zeros(1, 2, 4, 4)
    cam[0, 0, :2, :2] = 1.0  # class 0: the top-left cell
    cam[0, 1, 2:, :] = 2.0  # class 1: the bottom row
    walked = propagate(cam, object_and_background(), power=8.0, steps=1)
    grid = torch.tensor([[[0.5, 0.5], [0.0, 0.0]], [[0.0, 0.0], [2.0, 2.0]]])[None]
    expected = F.interpolate(grid, size=(4, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(walked, expected)


def test_feature_maps_are_the_models_own_a_few_inputs_a_pass(model, batch):
    # Through the fast view (batch norm folded), one 2x input a pass: the same up to round-off.
    x = F.interpolate(batch, scale_factor=2.0, mode="bilinear", align_corners=False)
    expected = plain_features(model, x, "net.body._blocks.10")
    found = feature_maps(model, x, "net.body._blocks.10")
    assert found.shape == expected.shape == (2, 112, 28, 28)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-3 * float(expected.abs().max()))


def test_localization_maps_walks_the_averaged_map_over_the_feature_layer(model, batch):
    targets = torch.tensor([[281, 285], [967, 504]])
    cam = LocalizationConfig("cam", method="grad-cam", scales=(1.0, 1.5), segmentation="mean")
    walked = dataclasses.replace(cam, affinity_steps=2, affinity_power=4.0, affinity_scale=1.5)
    plain = localization_maps(model, batch, targets, cam)
    x = F.interpolate(batch, scale_factor=1.5, mode="bilinear", align_corners=False)
    expected = propagate(plain, plain_features(model, x, "net.features"), 4.0, 2)
    found = localization_maps(model, batch, targets, walked)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-5)


def test_another_layer_can_give_the_affinities(model, batch):
    targets = torch.tensor([[281], [967]])
    cam = LocalizationConfig("cam", method="grad-cam", segmentation="mean")
    walked = dataclasses.replace(
        cam, affinity_steps=1, affinity_scale=1.0, affinity_layer="net.body._blocks.10"
    )
    features = plain_features(model, batch, "net.body._blocks.10")
    assert features.shape[-2:] == (14, 14)  # stride 16: finer than the feature layer's 7 x 7
    expected = propagate(localization_maps(model, batch, targets, cam), features, 8.0, 1)
    found = localization_maps(model, batch, targets, walked)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-5)


class Strided(nn.Module):
    """A block that opens with a 1x1 expansion at its input's grid and then
    halves the grid, as the inverted-residual blocks of mobile networks do."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.down = nn.Conv2d(2 * c, c, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.expand(x)))


def _staged(feature_layer: str = "head") -> deepinside.Classifier:
    # Grids on a 32 x 32 input: stem 16, stage1 16 (s16 x2), stage2 8, head 8.
    net = nn.Sequential()
    net.add_module("stem", nn.Conv2d(3, 4, 3, stride=2, padding=1))
    net.add_module("stage1", nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)))
    net.add_module("stage2", Strided(4))
    net.add_module("head", nn.Conv2d(4, 4, 1))
    net.add_module("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)))
    pre = deepinside.Preprocessing(input_size=(32, 32), resize="stretch")
    return deepinside.Classifier(net, pre, name="staged", feature_layer=feature_layer)


def test_the_finer_layer_is_the_last_stage_at_half_the_stride():
    # stage2's 1x1 expansion still has the 16 x 16 grid, but it is the
    # strided block's scratch: the last stage that ends on that grid is stage1.
    assert finer_layer(_staged(), "net.head", torch.zeros(1, 3, 32, 32)) == "net.stage1"


class SharedReLU(nn.Module):
    """One ReLU module called twice a pass, as many hand-written networks do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))  # grids 32, 32, 16, 16
        return self.fc(x.mean((-2, -1)))


def test_a_module_called_twice_a_pass_is_not_the_finer_layer():
    # The ReLU's first call ends last on the 32 x 32 grid, but a hook on it
    # sees its second call too, on the feature layer's grid: conv1 it is.
    pre = deepinside.Preprocessing(input_size=(64, 64), resize="stretch")
    model = deepinside.Classifier(SharedReLU(), pre, name="shared", feature_layer="conv2")
    assert finer_layer(model, "net.conv2", torch.zeros(1, 3, 64, 64)) == "net.conv1"


def test_the_finer_layer_is_found_again_when_the_model_changes():
    model, x = _staged(), torch.zeros(1, 3, 32, 32)
    assert finer_layer(model, "net.head", x) == "net.stage1"
    model.net.stage2 = nn.Conv2d(4, 4, 1)  # no longer halves the grid: the head's is stage1's
    assert finer_layer(model, "net.head", x) is None


def test_a_model_with_no_layer_at_half_the_stride_has_no_finer_layer():
    # The stem's grid (16) is the feature layer's own when the feature layer is stage1.
    assert finer_layer(_staged(), "net.stage1.1", torch.zeros(1, 3, 32, 32)) is None


def test_the_builtin_models_finer_layer_is_block_10(model, batch):
    # The last block at stride 16 (14 x 14 on a 224 input, 28 x 28 at 2x).
    assert finer_layer(model, "net.features", batch) == "net.body._blocks.10"
    assert finer_layer(model, "net.features", F.interpolate(batch, scale_factor=2.0)) == "net.body._blocks.10"


def test_the_default_walks_over_the_finer_layer_at_2x(model, batch):
    targets = torch.tensor([[281], [967]])
    default = PRESETS["default"]
    x = F.interpolate(batch, scale_factor=2.0, mode="bilinear", align_corners=False)
    plain = localization_maps(model, batch, targets, dataclasses.replace(default, affinity_steps=0))
    expected = propagate(plain, plain_features(model, x, "net.body._blocks.10"), 4.0, 4)
    found = localization_maps(model, batch, targets, default)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-5)


def test_a_model_without_a_finer_layer_walks_over_its_feature_layer():
    model = _staged("stage1")  # nothing at half stage1's stride (the stem has its grid)
    x = torch.rand(2, 3, 32, 32)
    targets = torch.tensor([[0], [2]])
    default = PRESETS["default"]
    plain = localization_maps(model, x, targets, dataclasses.replace(default, affinity_steps=0))
    x2 = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    expected = propagate(plain, plain_features(model, x2, "net.stage1"), 4.0, 4)
    found = localization_maps(model, x, targets, default)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-5)


def test_the_default_names_the_finer_layer_or_falls_back_to_the_feature_walk(model):
    assert config_for(model, "default").affinity_layer == "net.body._blocks.10"
    assert config_for(model, "multiscale") == ABLATIONS["multiscale"]
    fallback = config_for(_staged("stage1"), "default")  # no layer at half stage1's stride
    walk = ABLATIONS["feature-walk"]
    assert (fallback.affinity_layer, fallback.affinity_depth) == (None, "features")
    assert (fallback.affinity_steps, fallback.affinity_power, fallback.segmentation) == (
        walk.affinity_steps,
        walk.affinity_power,
        walk.segmentation,
    )


def test_the_presets_are_the_multiscale_map_walked_and_cut_two_ways():
    default, walk, multiscale = PRESETS["default"], ABLATIONS["feature-walk"], ABLATIONS["multiscale"]
    unwalked = {
        "affinity_steps": 0,
        "affinity_power": 8.0,
        "affinity_scale": 2.0,
        "affinity_depth": "features",
        "coarse_walk": None,
    }
    assert dataclasses.replace(default, name="multiscale", segmentation="mean", **unwalked) == multiscale
    assert dataclasses.replace(walk, name="multiscale", **unwalked) == multiscale
    assert (default.segmentation, default.affinity_depth, default.affinity_layer) == ("otsu", "finer", None)
    assert (walk.segmentation, walk.affinity_depth, walk.affinity_steps) == ("mean", "features", 16)
