"""The early stop: each class stops once its picture shows the class at a
coarser scale, so the steps go to the classes that need them
(docs/class-models.md says how the rule was chosen)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DeepInsideError, check_count
from ..models.preprocessing import Preprocessing


@dataclass(frozen=True)
class EarlyStop:
    """Stop a class once its picture shows the class at a coarser scale, so
    the steps go to the classes that need them. At step ``first`` and every
    ``every`` steps after, the picture as it would be returned (averaged,
    clipped) is shrunk by ``scale`` and enlarged back; a class whose
    probability P_c is at least ``probability`` both for that blurred picture
    and for the picture itself is done, and the rest of its batch goes on
    without it. (A picture that only fools the network with fine texture
    loses the class at half scale: on development classes this check
    separated the pictures a second network recognised from those it did not
    better than the model's own confidence during the run. The picture itself
    must pass too, as it is what is saved and judged converged: a blurred
    picture can be surer than the sharp one.)"""

    probability: float = 0.95
    scale: float = 0.5
    first: int = 96
    every: int = 32

    def __post_init__(self) -> None:
        if not 0.0 < self.probability <= 1.0:
            raise DeepInsideError(f"early-stop probability must be in (0, 1], got {self.probability!r}")
        if not 0.0 < self.scale <= 1.0:
            raise DeepInsideError(f"early-stop scale must be in (0, 1], got {self.scale!r}")
        check_count("early-stop first", self.first)
        check_count("early-stop every", self.every)

    def due(self, step: int) -> bool:
        """Whether classes are checked after ``step`` (0-based)."""
        done = step + 1
        return done >= self.first and (done - self.first) % self.every == 0

    @torch.no_grad()
    def sure(
        self,
        score: Callable[[torch.Tensor], torch.Tensor],
        pixels: torch.Tensor,
        targets: torch.Tensor,
        preprocessing: Preprocessing,
    ) -> torch.Tensor:
        """``(K,)``: whether the model gives each picture (pixels ``(K, 3, H, W)``
        in [0, 1]) at least ``probability`` for its target, both after the
        blur and as it is (the latter scored only for the pictures that pass
        the blur, most often none)."""
        small = F.interpolate(
            pixels, scale_factor=self.scale, mode="bilinear", antialias=True, align_corners=False
        )
        blurred = F.interpolate(small, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
        sure = self._passes(score, blurred, targets, preprocessing)
        if bool(sure.any()):
            sure[sure.clone()] = self._passes(score, pixels[sure], targets[sure], preprocessing)
        return sure

    def _passes(
        self,
        score: Callable[[torch.Tensor], torch.Tensor],
        pixels: torch.Tensor,
        targets: torch.Tensor,
        preprocessing: Preprocessing,
    ) -> torch.Tensor:
        scores = score(preprocessing.normalize(pixels).contiguous(memory_format=torch.channels_last))
        return target_probability(scores, targets) >= self.probability


def target_probability(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(B,)``: the softmax probability of each row's target class (in float32 at least)."""
    return scores.float().softmax(1).gather(1, targets[:, None])[:, 0]


__all__ = ["EarlyStop", "target_probability"]
