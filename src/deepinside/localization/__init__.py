"""Localisation for free: object boxes from class saliency, no box supervision.

The pipeline ``maps -> refine -> cut -> box`` (:mod:`.maps`, :mod:`.pipeline`),
its configs as data (:mod:`.config`), and :func:`localize`, the loop over photos.
"""

from .boxes import Box, centred_box, iou, largest_component_box, whole_image_box
from .config import ABLATIONS, CONFIGS, PRESETS, CoarseWalk, LocalizationConfig, config_named
from .localize import DEFAULT_BATCH_SIZE, PhotoBoxes, localize
from .maps import PIXELS_PER_PASS, class_maps, config_for, localization_maps, refine
from .pipeline import ClassBox, box_of, boxes_for, cut, localize_inputs, working_size

__all__ = [
    "ABLATIONS",
    "CONFIGS",
    "DEFAULT_BATCH_SIZE",
    "PIXELS_PER_PASS",
    "PRESETS",
    "Box",
    "ClassBox",
    "CoarseWalk",
    "LocalizationConfig",
    "PhotoBoxes",
    "box_of",
    "boxes_for",
    "centred_box",
    "class_maps",
    "config_for",
    "config_named",
    "cut",
    "iou",
    "largest_component_box",
    "localization_maps",
    "localize",
    "localize_inputs",
    "refine",
    "whole_image_box",
    "working_size",
]
