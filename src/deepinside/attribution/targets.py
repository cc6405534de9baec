"""What to explain, in one place: user words for classes resolved to index
tensors, and scores other than one class's logit.

The paper's S_c is the unnormalised score of class c. A target may be any
differentiable scalar of the model's output per image: the ready-made ones
below (a sum of classes, the classes a multi-label head predicts, a region
of a segmentation output, a regression output), or any callable
``f(output) -> (B,)``.

>>> deepinside.attribute(model, x, deepinside.targets.multilabel(0.5))  # doctest: +SKIP
>>> deepinside.attribute(seg_model, x, deepinside.targets.region(15, mask))  # doctest: +SKIP
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import SupportsIndex, TypeGuard

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._core.scores import ScoreTarget
from ..errors import DeepInsideError
from ..models.classifier import Classifier

#: A class named by index (NumPy integers too), or (with a :class:`Classifier`) by WordNet id or name.
ClassName = int | str
#: None (top class per image), one class for all images, one per image, a
#: list of classes per image (several maps per image, one batched pass), or a
#: score: a :class:`ScoreTarget` or a callable ``f(output) -> (B,)``.
Target = (
    None
    | ClassName
    | Sequence[ClassName]
    | Sequence[Sequence[ClassName]]
    | torch.Tensor
    | np.ndarray
    | ScoreTarget
    | Callable[[torch.Tensor], torch.Tensor]
)


def resolve_targets(model: nn.Module, target: Target, batch: int) -> torch.Tensor | ScoreTarget | None:
    """``target`` as class indices (None, ``(B,)``, or ``(B, K)``) or as a score target."""
    if target is None:
        return None
    if isinstance(target, ScoreTarget):
        return target.resolved(lambda name: class_index(model, name))
    if callable(target) and not isinstance(target, (torch.Tensor, np.ndarray)):
        return ScoreFunction(target)
    if isinstance(target, np.ndarray) and target.dtype.kind in "iu":
        target = torch.as_tensor(target)
    if isinstance(target, torch.Tensor):
        t = target.long().cpu()
        if t.dim() == 0:
            return t.expand(batch).clone()
        return _check_batch(t, batch)
    if isinstance(target, str) or not isinstance(target, Iterable):  # one class for all images
        return torch.full((batch,), class_index(model, target), dtype=torch.long)
    items = list(target)
    if items and all(_is_row(i) for i in items):
        widths = {len(i) for i in items}
        if len(widths) != 1 or 0 in widths:
            raise DeepInsideError("per-image target lists must all have the same, non-zero length")
        t = torch.tensor([[class_index(model, c) for c in row] for row in items], dtype=torch.long)
    else:
        t = torch.tensor([class_index(model, c) for c in items], dtype=torch.long)
    return _check_batch(t, batch)


def _check_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.dim() not in (1, 2) or t.shape[0] != batch:
        raise DeepInsideError(
            f"got targets of shape {tuple(t.shape)} for {batch} images: give one class per image, "
            "or one list of classes per image"
        )
    return t


def _is_row(item: object) -> bool:
    """One image's list of classes."""
    return isinstance(item, (list, tuple)) or (isinstance(item, np.ndarray) and item.ndim == 1)


def _is_index(value: object) -> TypeGuard[SupportsIndex]:
    """An integer of any kind (Python's, NumPy's, anything with ``__index__``),
    but not a bool: True is no class."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, SupportsIndex):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def class_index(model: nn.Module, name: object) -> int:
    """A user's word for a class as an index: names only with a Classifier."""
    if _is_index(name):
        name = operator.index(name)
    elif not isinstance(name, str):
        raise DeepInsideError(f"a class is an index or a name, got {name!r}")
    if isinstance(model, Classifier) and model.declared_classes is not None:
        return model.classes.resolve(name)
    if isinstance(name, str) and not name.strip().isdigit():
        if isinstance(model, Classifier):
            raise DeepInsideError(
                f"class {name!r}: model {model.name!r} has no class names; give them "
                "(Classifier(..., classes=[...]) or load_model(..., classes=...)), or name the class by index"
            )
        raise DeepInsideError(
            f"class {name!r}: a plain nn.Module has no class names; use an index, or wrap the model "
            "with deepinside.load_model(module, input_size=..., classes=[...])"
        )
    if int(name) < 0:
        raise DeepInsideError(f"class index {int(name)} is negative: classes are numbered from 0")
    return int(name)


def _indices(classes: Sequence[ClassName], index_of: Callable[[ClassName], int]) -> list[int]:
    if isinstance(classes, (str, int)) or not classes:
        raise DeepInsideError(f"give a non-empty list of classes, got {classes!r}")
    return [index_of(c) for c in classes]


class ScoreFunction(ScoreTarget):
    """Any callable ``f(output) -> (B,)`` as a target; it must work row by
    row (on any subset of the images, in any order), as methods cut batches."""

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.function = function

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.function(output)

    def __repr__(self) -> str:
        return f"ScoreFunction({getattr(self.function, '__name__', self.function)!r})"


class ClassSum(ScoreTarget):
    """The sum of several classes' scores: ``sum_c S_c``."""

    def __init__(self, classes: Sequence[ClassName]) -> None:
        self.classes = list(classes) if not isinstance(classes, (str, int)) else classes

    def resolved(self, index_of: Callable[[object], int]) -> ScoreTarget:
        return _Indexed(_indices(self.classes, index_of))

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return _Indexed(_indices(self.classes, int))(output)


class _Indexed(ScoreTarget):
    def __init__(self, indices: list[int]) -> None:
        self.indices = indices

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        _need_classes(output, max(self.indices))
        return output[:, self.indices].sum(1)


class MultiLabel(ScoreTarget):
    """A multi-label head's prediction: the sum of the scores (logits) of
    every class whose sigmoid at the image itself is above ``threshold``
    (the image's top class where none is). The classes are chosen once, at
    the image: noisy copies and path points are scored for the same set."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise DeepInsideError(f"a multi-label threshold is a probability in (0, 1), got {threshold}")
        self.threshold = threshold

    def fixed(self, output: torch.Tensor) -> ScoreTarget:
        _need_classes(output, 0)
        chosen = output.detach().sigmoid() > self.threshold
        top = F.one_hot(output.detach().argmax(1), output.shape[1]).bool()
        return _Masked(torch.where(chosen.any(1, keepdim=True), chosen, top))

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.fixed(output)(output)


class _Masked(ScoreTarget):
    """The sum of the scores a per-image class mask ``(B, C)`` selects."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def rows(self, index: torch.Tensor) -> ScoreTarget:
        return _Masked(self.mask[index.to(self.mask.device)])

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return (output * self.mask.to(output.device, output.dtype)).sum(1)


class Region(ScoreTarget):
    """A segmentation output's class score summed over a region: ``sum over
    the mask of S_c(x, y)`` for an output ``(B, classes, H, W)``; ``mask``
    ``(H, W)`` for every image or ``(B, H, W)``, boolean or weights."""

    def __init__(self, class_: ClassName, mask: torch.Tensor | np.ndarray) -> None:
        self.class_ = class_
        self.mask = torch.as_tensor(mask)
        if self.mask.dim() not in (2, 3):
            raise DeepInsideError(f"a region mask is (H, W) or (B, H, W), got shape {tuple(self.mask.shape)}")

    def resolved(self, index_of: Callable[[object], int]) -> ScoreTarget:
        return _Region(index_of(self.class_), self.mask)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return _Region(int(self.class_), self.mask)(output)


class _Region(ScoreTarget):
    def __init__(self, index: int, mask: torch.Tensor) -> None:
        self.index, self.mask = index, mask

    def rows(self, index: torch.Tensor) -> ScoreTarget:
        return self if self.mask.dim() == 2 else _Region(self.index, self.mask[index.to(self.mask.device)])

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 4 or output.shape[-2:] != self.mask.shape[-2:]:
            raise DeepInsideError(
                f"a region target reads an output (batch, classes, H, W) of the mask's size "
                f"{tuple(self.mask.shape[-2:])}, got {tuple(output.shape)}"
            )
        _need_classes(output, self.index)
        return (output[:, self.index] * self.mask.to(output.device, output.dtype)).flatten(1).sum(1)


class Regression(ScoreTarget):
    """A regression output: column ``index`` of ``(B, outputs)``, or the output itself if ``(B,)``."""

    def __init__(self, index: int = 0) -> None:
        self.index = index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() == 1:
            return output
        _need_classes(output, self.index)
        return output[:, self.index]


def _need_classes(output: torch.Tensor, index: int) -> None:
    if output.dim() < 2 or not 0 <= index < output.shape[1]:
        raise DeepInsideError(
            f"the target reads output column {index}, but the model's output has shape {tuple(output.shape)}"
        )


def class_sum(classes: Sequence[ClassName]) -> ScoreTarget:
    """Explain the sum of several classes' scores (names work with a :class:`Classifier`)."""
    return ClassSum(classes)


def multilabel(threshold: float = 0.5) -> ScoreTarget:
    """Explain a multi-label head's prediction: every class over ``threshold`` (sigmoid), summed."""
    return MultiLabel(threshold)


def region(class_: ClassName, mask: torch.Tensor | np.ndarray) -> ScoreTarget:
    """Explain a segmentation's class ``class_`` over the output pixels in ``mask``."""
    return Region(class_, mask)


def regression(index: int = 0) -> ScoreTarget:
    """Explain a regression output (column ``index``)."""
    return Regression(index)
