"""``visualize_class``: the image each class's score likes best, behind one call."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..attribution.targets import class_index
from ..errors import DeepInsideError
from ..models.preprocessing import Preprocessing
from . import presets
from .early_stop import EarlyStop
from .objectives import Objective
from .presets import Preset
from .render import StepReport, render_classes
from .result import ClassModels

#: A class named by index, or (with a :class:`Classifier`) by WordNet id or name.
ClassName = int | str


def visualize_class(
    model: nn.Module,
    targets: ClassName | Sequence[ClassName] | torch.Tensor,
    *,
    preset: str | Preset = "default",
    objective: str | Objective | None = None,
    steps: int | None = None,
    early_stop: EarlyStop | bool | None = None,
    size: int | tuple[int, int] | None = None,
    seed: int | torch.Generator = 0,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    preprocessing: Preprocessing | None = None,
    progress: bool | None = False,
    on_step: Callable[[StepReport], None] | None = None,
) -> ClassModels:
    """The image each class's score likes best: one per target.

    Args:
        model: a classifier ``(B, 3, H, W) -> (B, C)`` scores (a
            :class:`~deepinside.Classifier` knows its preprocessing and class
            names). Never changed: the loop runs on a private eval-mode copy.
        targets: classes by index, WordNet id or name (names need a Classifier).
        preset: ``"default"`` (recognisable pictures), ``"convincing"``
            (pictures a second network is surer of, for more time),
            ``"paper"`` (the paper's recipe) or a :class:`Preset`.
        objective: the class term, ``"logit"`` (S_c, the default),
            ``"probability"`` (P_c) or ``"log-probability"``, minus the
            preset's penalty; or a whole :class:`Objective`.
        steps: number of updates, at most (default: the preset's).
        early_stop: stop each class once its picture shows the class at a
            coarser scale (see :class:`EarlyStop`): None keeps the preset's
            rule, False runs every class for all ``steps``, True uses
            ``EarlyStop()``.
        size: image size ``PX`` or ``(H, W)`` (default: the model's input size).
        seed: an int or a ``torch.Generator``; same seed, same pictures (bit
            for bit on the same machine and batch size).
        batch_size: classes optimised at once.
        device, dtype: must be the model's (default: the model's).
        preprocessing: the input convention for a plain ``nn.Module``
            (default: the Classifier's, or ImageNet's mean and std at 224).
        progress: a progress bar on stderr (None: only on a terminal).
        on_step: called after each step with a :class:`StepReport` (step,
            S_c, P_c, the pictures so far); raise from it to end the run.

    Returns:
        :class:`ClassModels`; ``images, log = visualize_class(...)`` gives the
        pictures ``(K, 3, H, W)`` in [0, 1] and the per-step log of S_c and P_c.

    >>> import deepinside
    >>> model = deepinside.load_model()
    >>> out = deepinside.visualize_class(model, "goldfish", preset="paper", steps=2, size=64)
    >>> out.images.shape, float(out.images.min()) >= 0, float(out.images.max()) <= 1
    (torch.Size([1, 3, 64, 64]), True, True)
    """
    chosen = presets.get(preset)
    if isinstance(objective, Objective):
        goal = objective
    elif objective is None or isinstance(objective, str):
        goal = chosen.objective(objective or "logit")
    else:
        raise DeepInsideError(f"objective must be a name or an Objective, got {type(objective).__name__}")
    recipe = dataclasses.replace(
        chosen, steps=chosen.steps if steps is None else steps, early_stop=chosen.stop_rule(early_stop)
    )
    return render_classes(
        model,
        class_indices(model, targets),
        recipe,
        goal,
        size=size,
        preprocessing=preprocessing,
        batch_size=batch_size,
        seed=seed,
        device=device,
        dtype=dtype,
        progress=progress,
        on_step=on_step,
    )


def class_indices(model: nn.Module, targets: ClassName | Sequence[ClassName] | torch.Tensor) -> list[int]:
    """Targets as class indices: names are resolved with a Classifier's class index."""
    if isinstance(targets, torch.Tensor):
        items: list[ClassName] = [int(t) for t in targets.reshape(-1).tolist()]
    elif isinstance(targets, (int, str)):
        items = [targets]
    else:
        items = list(targets)
    if not items:
        raise DeepInsideError("no classes given: name at least one class (index, WordNet id or name)")
    return [class_index(model, t) for t in items]


__all__ = ["ClassName", "class_indices", "visualize_class"]
