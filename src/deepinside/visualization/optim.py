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
from torch.optim.adam import adam

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
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        state: list[dict[str, torch.Tensor]],
        step: int,
        steps: int,
        moving: torch.Tensor | None = None,
    ) -> None:
        """Move ``params`` in place (only the rows of ``moving`` ``(B,)`` where given)."""
        lr = scheduled(self.lr, self.schedule, step, steps)
        for p, g in zip(params, grads):
            p.add_(g if moving is None else g * _rows(moving, g), alpha=lr)


@dataclass(frozen=True)
class Adam:
    """Adam ascent (Kingma & Ba) with a learning-rate schedule: torch's,
    maximising, with its fused kernel where there is one (one pass over the
    parameters instead of six)."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Schedule = "constant"

    def __post_init__(self) -> None:
        _check(self.lr, self.schedule)

    def init(self, params: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        # The fused kernel wants its step counts beside the parameters, the others on the CPU.
        return [
            {
                "m": torch.zeros_like(p),
                "v": torch.zeros_like(p),
                "step": torch.zeros((), dtype=torch.float32, device=p.device if _fusable(params) else "cpu"),
            }
            for p in params
        ]

    @torch.no_grad()
    def step(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        state: list[dict[str, torch.Tensor]],
        step: int,
        steps: int,
        moving: torch.Tensor | None = None,
    ) -> None:
        """Move ``params`` in place (only the rows of ``moving`` ``(B,)`` where given)."""
        frozen = None if moving is None else [p[~moving] for p in params]
        for s in state:
            s["step"].fill_(step)  # the bias corrections of update step + 1
        adam(
            params,
            grads,
            [s["m"] for s in state],
            [s["v"] for s in state],
            [],
            [s["step"] for s in state],
            fused=_fusable(params) or None,
            amsgrad=False,
            beta1=self.betas[0],
            beta2=self.betas[1],
            lr=scheduled(self.lr, self.schedule, step, steps),
            weight_decay=0.0,
            eps=self.eps,
            maximize=True,
        )
        if moving is not None and frozen is not None:
            for p, kept in zip(params, frozen):
                p[~moving] = kept


Optimizer = GradientAscent | Adam


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` mask as a multiplier broadcasting over ``like``'s rows."""
    return mask.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether torch has a fused Adam kernel for these parameters."""
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def _check(lr: float, schedule: str) -> None:
    if not (lr > 0 and math.isfinite(lr)):
        raise DeepInsideError(f"learning rate must be a positive number, got {lr}")
    if schedule not in ("constant", "cosine"):
        raise DeepInsideError(f"unknown learning-rate schedule {schedule!r}: use constant or cosine")


__all__ = ["Adam", "GradientAscent", "Optimizer", "Schedule", "scheduled"]
