"""What a class model run gives back: the pictures, the per-step log, the final scores."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class ObjectiveLog:
    """Per class and step: the class score S_c, the posterior P_c and the
    objective's value, as seen by the model at that step (after the
    transforms, at that step's size; the mean over the step's views).
    ``NaN`` after a class stopped.

    Attributes:
        scores, probabilities, objective: ``(K, steps)`` float64 tensors on the CPU.
        sizes: the ``(H, W)`` the model saw at each step.
        objective_name: what was maximised.
        steps_run: ``(K,)`` steps each class ran (fewer where it stopped).
    """

    scores: torch.Tensor
    probabilities: torch.Tensor
    objective: torch.Tensor
    sizes: list[tuple[int, int]]
    objective_name: str
    steps_run: torch.Tensor

    def rows(self, k: int) -> list[dict[str, object]]:
        """Class ``k``'s log as one record per step it ran (for JSON / CSV);
        non-finite values are None."""
        return [
            {
                "step": step + 1,
                "size": f"{h}x{w}",
                "score": _finite_or_none(float(self.scores[k, step])),
                "probability": _finite_or_none(float(self.probabilities[k, step])),
                "objective": _finite_or_none(float(self.objective[k, step])),
            }
            for step, (h, w) in enumerate(self.sizes[: int(self.steps_run[k])])
        ]


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


@dataclass
class ClassModels:
    """Class model visualisations.

    Attributes:
        images: ``(K, 3, H, W)`` pixels in [0, 1] (the optimised image mapped
            back through the model's preprocessing and clipped), on the
            model's device.
        log: the objective log.
        targets: class index of each image ``(K,)``.
        labels: a display name per image.
        final_scores, final_probabilities: S_c and P_c of each returned image
            ``(K,)`` (the clipped image, untransformed, at full size).
        failures: position in ``targets`` -> why that class failed (its
            objective or gradient stopped being finite).
        seconds: wall time of the whole run.

    ``images, log = visualize_class(...)`` unpacks it.
    """

    images: torch.Tensor
    log: ObjectiveLog
    targets: torch.Tensor
    labels: list[str]
    final_scores: torch.Tensor
    final_probabilities: torch.Tensor
    failures: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        # Any: the two items differ in type, which an __iter__ cannot say item by
        # item; a union would make every typed caller narrow what it unpacked.
        return iter((self.images, self.log))


__all__ = ["ClassModels", "ObjectiveLog"]
