"""What a class model visualisation maximises.

An :class:`Objective` maps the state of one optimisation step to one value per
image ``(B,)``; the render loop ascends their sum (the images of a batch are
independent, so each image ascends its own value). Objectives compose::

    class_logit() - 1e-3 * l2()                          # the paper's S_c(I) - lambda ||I||^2
    class_logit() - 0.05 * total_variation() - 2e-3 * l1()

All objectives read the image in the model's *input space* (normalised,
``(pixel - mean) / std``), where the paper's zero image is the training mean.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

import torch

from ..errors import DeepInsideError


class State:
    """What an objective may read at one step.

    Attributes:
        scores: class scores (logits) ``(B, C)`` of the transformed images.
        image: the parameterised image in model input space ``(B, 3, H, W)``,
            before the robustness transforms. It may be given as a function
            that makes it: the render loop does not always need the whole
            image, so it is made only when an objective reads it.
        targets: the class each image is rendered for ``(B,)`` (long).
    """

    def __init__(
        self, scores: torch.Tensor, image: torch.Tensor | Callable[[], torch.Tensor], targets: torch.Tensor
    ) -> None:
        self.scores = scores
        self.targets = targets
        self._image = image

    @property
    def image(self) -> torch.Tensor:
        if not isinstance(self._image, torch.Tensor):
            self._image = self._image()
        return self._image


class Objective:
    """A quantity to maximise, one value per image: ``objective(state) -> (B,)``.

    ``a + b``, ``a - b``, ``-a``, ``k * a`` and ``a * k`` (``k`` a number) are
    objectives too; ``name`` says what was composed.

    >>> obj = class_logit() - 0.5 * l2()
    >>> obj.name
    'class_logit - 0.5 * l2'
    """

    def __init__(self, fn: Callable[[State], torch.Tensor], name: str) -> None:
        self._fn = fn
        self.name = name

    def __call__(self, state: State) -> torch.Tensor:
        return self._fn(state)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def __add__(self, other: Objective) -> Objective:
        other = _as_objective(other)
        return Objective(lambda s: self(s) + other(s), f"{self.name} + {other.name}")

    def __sub__(self, other: Objective) -> Objective:
        other = _as_objective(other)
        return Objective(lambda s: self(s) - other(s), f"{self.name} - {_paren(other.name)}")

    def __neg__(self) -> Objective:
        return Objective(lambda s: -self(s), f"-{_paren(self.name)}")

    def __mul__(self, k: float) -> Objective:
        if isinstance(k, bool) or not isinstance(k, Real):
            return NotImplemented
        k = float(k)
        return Objective(lambda s: k * self(s), f"{k:g} * {_paren(self.name)}")

    __rmul__ = __mul__

    def __truediv__(self, k: float) -> Objective:
        if isinstance(k, bool) or not isinstance(k, Real):
            return NotImplemented
        return self * (1.0 / float(k))


def _paren(name: str) -> str:
    return f"({name})" if (" + " in name or " - " in name) else name


def _as_objective(other: object) -> Objective:
    if not isinstance(other, Objective):
        raise TypeError(
            f"objectives combine with objectives and numbers (k * objective), not {type(other).__name__}"
        )
    return other


def _selected(state: State, target: int | None) -> torch.Tensor:
    if target is None:
        return state.targets
    classes = state.scores.shape[1]
    if not 0 <= target < classes:
        raise DeepInsideError(f"class {target} is out of range: the model has classes 0 to {classes - 1}")
    return torch.full_like(state.targets, target)


def class_logit(target: int | None = None) -> Objective:
    """S_c: the unnormalised score of each image's target class (or of class
    ``target`` for every image). The paper's choice."""
    return Objective(lambda s: s.scores.gather(1, _selected(s, target)[:, None])[:, 0], "class_logit")


def class_probability(target: int | None = None) -> Objective:
    """P_c = softmax(S)_c, the posterior. It can also rise by pushing the other
    classes down; the paper found it gives worse pictures than S_c."""

    def fn(s: State) -> torch.Tensor:
        return (
            s.scores.float().softmax(dim=1).gather(1, _selected(s, target)[:, None])[:, 0].to(s.scores.dtype)
        )

    return Objective(fn, "class_probability")


def class_log_probability(target: int | None = None) -> Objective:
    """log P_c = S_c - logsumexp(S): the posterior on a scale whose gradient does not vanish."""

    def fn(s: State) -> torch.Tensor:
        return s.scores.log_softmax(dim=1).gather(1, _selected(s, target)[:, None])[:, 0]

    return Objective(fn, "class_log_probability")


def l2() -> Objective:
    """||I||_2^2 per image, in model input space (subtract it to decay the image)."""
    return Objective(lambda s: s.image.pow(2).flatten(1).sum(1), "l2")


def l1() -> Objective:
    """||I||_1 per image, in model input space."""
    return Objective(lambda s: s.image.abs().flatten(1).sum(1), "l1")


def total_variation(beta: float = 2.0) -> Objective:
    """Total variation ``sum ((dx^2 + dy^2)^(beta/2))`` per image (Mahendran &
    Vedaldi 2015); ``beta=1`` is the isotropic TV norm. Subtract it to smooth."""
    if beta <= 0:
        raise DeepInsideError(f"total variation needs beta > 0, got {beta}")

    def fn(s: State) -> torch.Tensor:
        x = s.image
        dx = x[..., :-1, 1:] - x[..., :-1, :-1]
        dy = x[..., 1:, :-1] - x[..., :-1, :-1]
        sq = dx.pow(2) + dy.pow(2)
        # d/dx of sqrt at 0 is infinite: keep beta < 2 finite on flat images.
        v = sq if beta == 2.0 else (sq + 1e-12).pow(beta / 2)
        return v.flatten(1).sum(1)

    return Objective(fn, "total_variation" if beta == 2.0 else f"total_variation({beta:g})")


OBJECTIVES: dict[str, Callable[[], Objective]] = {
    "logit": class_logit,
    "probability": class_probability,
    "log-probability": class_log_probability,
}


def class_objective(kind: str) -> Objective:
    """The class term by name: ``logit`` (S_c), ``probability`` (P_c) or ``log-probability``."""
    try:
        return OBJECTIVES[kind]()
    except KeyError:
        raise DeepInsideError(f"unknown objective {kind!r}: use {', '.join(OBJECTIVES)}") from None


__all__ = [
    "Objective",
    "State",
    "class_log_probability",
    "class_logit",
    "class_objective",
    "class_probability",
    "l1",
    "l2",
    "total_variation",
]
