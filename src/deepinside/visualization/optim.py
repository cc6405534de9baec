"""Update rules for the render loop, written per image.

Each rule updates only the rows (images) still being optimised: an image
whose objective or gradient stops being finite is frozen where it was, and
the others go on. ``lr`` follows a schedule over the steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import DeepInsideError

Schedule = Literal["constant", "cosine"]


def scheduled(lr: float, schedule: Schedule, step: int, steps: int, final: float = 0.1) -> float:
    """The learning rate at ``step`` of ``steps``: constant, or a cosine decay
    from ``lr`` to ``final * lr``."""
    if schedule == "constant" or steps <= 1:
        return lr
    t = step / (steps - 1)
    return lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class GradientAscent:
    """Plain gradient ascent ``x += lr * g`` (the paper's)."""

    lr: float
    schedule: Schedule = "constant"

    def __post_init__(self) -> None:
        _check(self.lr, self.schedule)

    def init(self, params: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [{} for _ in params]

    def updates(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], state: list[dict[str, torch.Tensor]],
        step: int, steps: int,
    ) -> list[torch.Tensor]:
        lr = scheduled(self.lr, self.schedule, step, steps)
        return [lr * g for g in grads]


@dataclass(frozen=True)
class Adam:
    """Adam ascent (Kingma & Ba) with a learning-rate schedule."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Schedule = "constant"

    def __post_init__(self) -> None:
        _check(self.lr, self.schedule)

    def init(self, params: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [{"m": torch.zeros_like(p), "v": torch.zeros_like(p)} for p in params]

    def updates(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], state: list[dict[str, torch.Tensor]],
        step: int, steps: int,
    ) -> list[torch.Tensor]:
        b1, b2 = self.betas
        # lr * m_hat / (sqrt(v_hat) + eps), the bias corrections folded into two scalars.
        step_size = scheduled(self.lr, self.schedule, step, steps) / (1 - b1 ** (step + 1))
        v_scale = 1 / math.sqrt(1 - b2 ** (step + 1))
        out = []
        for g, s in zip(grads, state):
            s["m"].mul_(b1).add_(g, alpha=1 - b1)
            s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = s["v"].sqrt().mul_(v_scale).add_(self.eps)
            out.append(torch.div(s["m"], denom).mul_(step_size))
        return out


Optimizer = GradientAscent | Adam


def _check(lr: float, schedule: str) -> None:
    if not (lr > 0 and math.isfinite(lr)):
        raise DeepInsideError(f"learning rate must be a positive number, got {lr}")
    if schedule not in ("constant", "cosine"):
        raise DeepInsideError(f"unknown learning-rate schedule {schedule!r}: use constant or cosine")


__all__ = ["Adam", "GradientAscent", "Optimizer", "Schedule", "scheduled"]
