"""Batch's shortcut for the localisation maps: the map already computed
stands in for the config's first step only, never for its later ones."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import deepinside
from deepinside.attribution import attribute
from deepinside.attribution.methods import method_from_name
from deepinside.batch.stages import _maps_for_boxes
from deepinside.localization import config_for, localization_maps


@pytest.mark.parametrize("walk_steps", [0, 16])
def test_a_one_view_config_reuses_the_map_and_still_walks(
    model: deepinside.Classifier, photos: dict, walk_steps: int
) -> None:
    inputs, _ = model.prepare([photos["chelsea"]])
    classes = torch.tensor([[281]])
    config = dataclasses.replace(
        config_for(model, "paper"), affinity_steps=walk_steps, affinity_power=8.0, affinity_scale=1.0
    )
    computed = {"gradient": attribute(model, inputs, classes, method_from_name("gradient")).map}

    reused = _maps_for_boxes(model, inputs, classes, computed, "max-abs", config)

    torch.testing.assert_close(reused, localization_maps(model, inputs, classes, config))
