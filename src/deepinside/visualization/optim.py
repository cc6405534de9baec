"""Update rules for the render loop, written per image.

Each rule moves the parameters in place, only the rows (images) still being
optimised: an image whose objective or gradient stops being finite is
frozen where it was, and the others go on. ``lr`` follows a schedule over the steps.
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

    def step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], state: list[dict[str, torch.Tensor]],
        step: int, steps: int, moving: torch.Tensor | None = None,
    ) -> None:
        """Move ``params`` in place (only the rows of ``moving`` ``(B,)`` where given)."""
        lr = scheduled(self.lr, self.schedule, step, steps)
        for p, g in zip(params, grads):
            p.add_(g if moving is None else g * _rows(moving, g), alpha=lr)


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

    def step(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], state: list[dict[str, torch.Tensor]],
        step: int, steps: int, moving: torch.Tensor | None = None,
    ) -> None:
        """Move ``params`` in place (only the rows of ``moving`` ``(B,)`` where given)."""
        b1, b2 = self.betas
        # lr * m_hat / (sqrt(v_hat) + eps) with both bias corrections folded
        # into scalars, so that the update is one fused op on the parameters.
        root = math.sqrt(1 - b2 ** (step + 1))
        step_size = scheduled(self.lr, self.schedule, step, steps) / (1 - b1 ** (step + 1)) * root
        for p, g, s in zip(params, grads, state):
            s["m"].lerp_(g, 1 - b1)
            s["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = s["v"].sqrt().add_(self.eps * root)
            p.addcdiv_(s["m"] if moving is None else s["m"] * _rows(moving, p), denom, value=step_size)


Optimizer = GradientAscent | Adam


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` mask as a multiplier broadcasting over ``like``'s rows."""
    return mask.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def _check(lr: float, schedule: str) -> None:
    if not (lr > 0 and math.isfinite(lr)):
        raise DeepInsideError(f"learning rate must be a positive number, got {lr}")
    if schedule not in ("constant", "cosine"):
        raise DeepInsideError(f"unknown learning-rate schedule {schedule!r}: use constant or cosine")


__all__ = ["Adam", "GradientAscent", "Optimizer", "Schedule", "scheduled"]
