"""Class model visualisation (Simonyan et al. 2013, section 2) and what came after.

The modules read like the idea (after Lucent): :mod:`.param` (what is
optimised), :mod:`.transforms` (robustness; :mod:`.resampling` resamples
in a fixed order, :mod:`.regularizers` act between steps),
:mod:`.objectives` (what is maximised), :mod:`.optim` (the update),
:mod:`.render` (the loop, with :mod:`.schedule` for the sizes seen and
:mod:`.early_stop`), :mod:`.presets` (ready recipes), :mod:`.result` (what
a run gives back). :func:`visualize_class` (:mod:`.api`) is the front door;
:mod:`.output` writes pictures, logs and contact sheets, and :mod:`.job`
renders many classes into a folder, resumably, in worker processes.

>>> import deepinside
>>> model = deepinside.load_model()
>>> images, log = deepinside.visualize_class(model, ["space shuttle", "goldfish"])  # doctest: +SKIP
>>> images.shape                                                                      # doctest: +SKIP
torch.Size([2, 3, 224, 224])
"""

from __future__ import annotations

from . import objectives, optim, param, presets, regularizers, resampling, transforms
from .api import ClassName, class_indices, visualize_class
from .early_stop import EarlyStop
from .objectives import Objective
from .presets import Preset
from .render import StepReport, render_classes
from .result import ClassModels, ObjectiveLog

__all__ = [
    "ClassModels",
    "ClassName",
    "EarlyStop",
    "Objective",
    "ObjectiveLog",
    "Preset",
    "StepReport",
    "class_indices",
    "objectives",
    "optim",
    "param",
    "presets",
    "regularizers",
    "render_classes",
    "resampling",
    "transforms",
    "visualize_class",
]
