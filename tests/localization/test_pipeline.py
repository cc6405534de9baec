"""The pipeline's steps (maps -> refine -> cut -> box) and its public face."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import deepinside
from deepinside import DeepInsideError
from deepinside.localization import (
    ABLATIONS,
    CONFIGS,
    PRESETS,
    CoarseWalk,
    LocalizationConfig,
    box_of,
    class_maps,
    config_for,
    config_named,
    cut,
    localization_maps,
    localize,
    localize_inputs,
    refine,
)


def _tiny_model() -> deepinside.Classifier:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    return deepinside.load_model(net.eval(), input_size=16)


def _two_level(h: int = 12, w: int = 16) -> np.ndarray:
    """A map of 0.1 with a block of 1.0 at rows 2..5, columns 3..9."""
    m = np.full((h, w), 0.1, np.float32)
    m[2:6, 3:10] = 1.0
    return m


@pytest.mark.parametrize("rule", ["mean", "otsu", "threshold"])
def test_cut_keeps_the_high_block_of_a_two_level_map(rule):
    saliency_map = _two_level()
    seg = cut(np.zeros((12, 16, 3), np.uint8), saliency_map, LocalizationConfig("t", segmentation=rule))
    assert seg.note == "" and np.array_equal(seg.mask, saliency_map == 1.0)


def test_cut_mixes_the_centre_prior_over_the_maps_peak():
    saliency_map = np.zeros((9, 9), np.float32)
    saliency_map[0, 0] = 2.0  # a corner peak, which the prior alone outweighs in the centre
    pixels = np.zeros((9, 9, 3), np.uint8)
    config = LocalizationConfig("t", segmentation="threshold", threshold=0.95, centre_prior=0.7)
    seg = cut(pixels, saliency_map, config)
    # 0.3 * 1 at the corner against 0.7 at the centre: only the centre is near the top.
    assert seg.mask[4, 4] and not seg.mask[0, 0] and seg.mask.sum() == 1
    without = cut(pixels, saliency_map, dataclasses.replace(config, centre_prior=0.0))
    assert without.mask[0, 0] and without.mask.sum() == 1


def test_cut_smooths_the_map_before_the_rule():
    saliency_map = np.zeros((21, 21), np.float32)
    saliency_map[10, 10] = 1.0
    config = LocalizationConfig("t", segmentation="threshold", threshold=0.5)
    pixels = np.zeros((21, 21, 3), np.uint8)
    assert cut(pixels, saliency_map, config).mask.sum() == 1
    smoothed = cut(pixels, saliency_map, dataclasses.replace(config, smoothing=0.1)).mask
    assert smoothed.sum() > 1 and smoothed[10, 10]  # the blur spreads the peak to its neighbours


def test_box_of_takes_the_largest_component_or_the_union():
    mask = np.zeros((10, 20), bool)
    mask[1:4, 1:4] = True  # 9 pixels
    mask[5:9, 10:18] = True  # 32 pixels
    assert box_of(mask, LocalizationConfig("t")) == (10.0, 5.0, 18.0, 9.0)
    union = LocalizationConfig("t", box="union", union_min_fraction=0.25)
    assert box_of(mask, union) == (1.0, 1.0, 18.0, 9.0)
    assert box_of(mask, dataclasses.replace(union, union_min_fraction=0.5)) == (10.0, 5.0, 18.0, 9.0)
    assert box_of(np.zeros((4, 4), bool), union) is None


def test_class_maps_average_the_views_over_their_peaks():
    model = _tiny_model()
    x = torch.rand(2, 3, 16, 16)
    targets = torch.tensor([[0, 2], [1, 0]])
    config = LocalizationConfig("t", flip=True)
    plain = deepinside.attribute(model, x, targets, "gradient").map
    mirrored = deepinside.attribute(model, x.flip(-1), targets, "gradient").map.flip(-1)

    def over_peak(m: torch.Tensor) -> torch.Tensor:
        return m / m.flatten(-2).amax(-1)[..., None, None]

    expected = (over_peak(plain) + over_peak(mirrored)) / 2
    found = class_maps(model, x, targets, config)
    assert found.shape == (2, 2, 16, 16)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-6)
    # One view: the method's map as it is, with its own scale.
    torch.testing.assert_close(class_maps(model, x, targets, LocalizationConfig("t")), plain)


def test_refine_without_steps_leaves_the_maps_and_the_whole_is_maps_then_refine():
    model = _tiny_model()
    x = torch.rand(1, 3, 16, 16)
    targets = torch.tensor([[1]])
    maps = torch.rand(1, 1, 16, 16)
    assert refine(model, x, maps, LocalizationConfig("t")) is maps
    walk = LocalizationConfig("t", affinity_steps=2, affinity_layer="net.2", affinity_scale=1.0)
    walked = refine(model, x, class_maps(model, x, targets, walk), walk)
    torch.testing.assert_close(localization_maps(model, x, targets, walk), walked)


def test_localize_inputs_gives_the_boxes_localize_gives(model, photos):
    chosen = [photos["chelsea"], photos["coffee"]]
    expected = localize(model, chosen, top_k=2)
    inputs, placements = model.prepare(chosen)
    classes = [found.predictions[:2] for found in expected]
    got = localize_inputs(model, chosen, inputs, placements, classes, config_for(model, "default"))
    assert [len(boxes) for boxes in got] == [2, 2]
    for found, boxes in zip(expected, got):
        for want, have in zip(found.boxes, boxes):
            assert have.prediction == want.prediction and have.box == want.box and have.note == want.note
            assert np.array_equal(have.working_mask, want.working_mask)
            np.testing.assert_array_equal(have.working_saliency, want.working_saliency)


def test_the_product_configs_and_the_ablations_are_named_apart():
    assert list(PRESETS) == ["paper", "default"]
    assert set(ABLATIONS) == {"feature-walk", "multiscale", "fixed-threshold"}
    assert CONFIGS == {**PRESETS, **ABLATIONS}
    assert all(config_named(name).name == name for name in CONFIGS)
    with pytest.raises(DeepInsideError, match=r"use paper or default \(or an ablation: feature-walk"):
        config_named("earlier")


def test_the_default_falls_back_by_its_own_data_not_by_another_configs_name():
    walk = PRESETS["default"].coarse_walk
    assert walk == CoarseWalk(16, 8.0, "mean")
    # A model whose feature layer has nothing at half its stride.
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = deepinside.load_model(nn.Sequential(net, nn.Linear(4, 3)).eval(), input_size=16)
    own = dataclasses.replace(PRESETS["default"], coarse_walk=CoarseWalk(3, 2.0, "otsu"))
    resolved = config_for(model, own)
    assert (resolved.affinity_depth, resolved.affinity_steps, resolved.affinity_power) == ("features", 3, 2.0)
    assert resolved.segmentation == "otsu"
    # No fallback given: the same walk, over the feature layer.
    plain = config_for(model, dataclasses.replace(own, coarse_walk=None))
    assert (plain.affinity_depth, plain.affinity_steps, plain.affinity_power) == ("features", 4, 4.0)
