"""Batch's shortcut for the localisation maps: the map already computed
stands in for the config's first step only when it is that step's map, and
never for the later steps."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import deepinside
from deepinside.attribution import attribute
from deepinside.attribution.methods import method_from_name
from deepinside.batch import BatchSettings
from deepinside.batch.stages import _maps_for_boxes
from deepinside.localization import config_for, localization_maps


@pytest.fixture
def chelsea(model: deepinside.Classifier, photos: dict) -> torch.Tensor:
    inputs, _ = model.prepare([photos["chelsea"]])
    return inputs


@pytest.mark.parametrize("walk_steps", [0, 16])
def test_a_one_view_config_reuses_the_map_and_still_walks(
    model: deepinside.Classifier, chelsea: torch.Tensor, walk_steps: int
) -> None:
    classes = torch.tensor([[281]])
    config = dataclasses.replace(
        config_for(model, "paper"), affinity_steps=walk_steps, affinity_power=8.0, affinity_scale=1.0
    )
    computed = {"gradient": attribute(model, chelsea, classes, method_from_name("gradient")).map}

    reused = _maps_for_boxes(model, chelsea, classes, computed, BatchSettings(), config)

    torch.testing.assert_close(reused, localization_maps(model, chelsea, classes, config))


def test_a_map_made_with_other_options_is_not_reused(
    model: deepinside.Classifier, chelsea: torch.Tensor
) -> None:
    classes = torch.tensor([[281]])
    config = dataclasses.replace(config_for(model, "paper"), method="smoothgrad")
    cheap = method_from_name("smoothgrad", samples=2)
    computed = {"smoothgrad": attribute(model, chelsea, classes, cheap).map}

    torch.manual_seed(0)
    found = _maps_for_boxes(model, chelsea, classes, computed, BatchSettings(methods=(cheap,)), config)
    torch.manual_seed(0)
    torch.testing.assert_close(found, localization_maps(model, chelsea, classes, config))
