"""Localisation for free: object boxes from class saliency, no box supervision."""

from .boxes import Box, centred_box, iou, largest_component_box, whole_image_box
from .localize import PRESETS, ClassBox, LocalizationConfig, PhotoBoxes, config_for, config_named, localize

__all__ = [
    "PRESETS",
    "Box",
    "ClassBox",
    "LocalizationConfig",
    "PhotoBoxes",
    "centred_box",
    "config_for",
    "config_named",
    "iou",
    "largest_component_box",
    "localize",
    "whole_image_box",
]
