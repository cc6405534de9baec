"""Image-specific class saliency (Simonyan et al. 2013, section 3).

The map for image I0 and class c is ``M = max_channel |dS_c/dI|`` at I0, with
S_c the unnormalised class score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import nn

from ..errors import DeepInsideError
from ..models.classifier import Classifier
from ._engine import input_gradient

#: A class named by index, or (with a :class:`Classifier`) by WordNet id or name.
ClassName = Union[int, str]
#: None (top class per image), one class for all images, one per image, or a
#: list of classes per image (several maps per image, one batched pass).
Target = Union[None, ClassName, Sequence[ClassName], Sequence[Sequence[ClassName]], torch.Tensor]


def saliency(model: nn.Module, images: torch.Tensor, target: Target = None) -> torch.Tensor:
    """The paper's saliency maps.

    Args:
        model: a classifier, ``(B, 3, H, W) -> (B, C)`` scores. Used in eval mode
            (batch norm with running statistics, no dropout) without changing it.
        images: preprocessed batch ``(B, 3, H, W)``; left unchanged.
        target: None for each image's top-1 class; a class for all images; a
            sequence of B classes; or B sequences of K classes (all B*K maps in
            one batched pass). Classes are indices, or names when ``model`` is a
            :class:`~deepinside.Classifier`.

    Returns:
        ``(B, H, W)`` (or ``(B, K, H, W)`` for per-image lists) in the images'
        dtype and device: ``max over channels |dS_c/dI|``, unnormalised.

    >>> import torch, deepinside
    >>> model = deepinside.load_model()
    >>> saliency(model, torch.zeros(2, 3, 224, 224), target="tabby").shape
    torch.Size([2, 224, 224])
    """
    grad, _, _ = saliency_gradient(model, images, target)
    return grad.abs().amax(dim=-3)


def saliency_gradient(
    model: nn.Module, images: torch.Tensor, target: Target = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(gradient, scores, targets)``: dS_c/dI ``(B, [K,] 3, H, W)``, the class
    scores ``(B, C)`` and the classes used ``(B, [K])``."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise DeepInsideError(f"images must be a batch (B, 3, H, W), got shape {tuple(images.shape)}")
    batch = images.shape[0]
    targets = resolve_targets(model, target, batch)
    if targets is None or targets.dim() == 1:
        return input_gradient(model, images, targets)
    k = targets.shape[1]
    grad, scores, used = input_gradient(model, images.repeat_interleave(k, dim=0), targets.reshape(-1))
    return (
        grad.reshape(batch, k, *grad.shape[1:]),
        scores.reshape(batch, k, -1)[:, 0],
        used.reshape(batch, k),
    )


def resolve_targets(model: nn.Module, target: Target, batch: int) -> torch.Tensor | None:
    """``target`` as class indices: None, ``(B,)``, or ``(B, K)``."""
    if target is None:
        return None
    if isinstance(target, torch.Tensor):
        t = target.long().cpu()
        if t.dim() == 0:
            return t.expand(batch).clone()
        return _check_batch(t, batch)
    if isinstance(target, (int, str)):
        return torch.full((batch,), _index(model, target), dtype=torch.long)
    items = list(target)
    if items and all(isinstance(i, (list, tuple)) for i in items):
        widths = {len(i) for i in items}
        if len(widths) != 1 or 0 in widths:
            raise DeepInsideError("per-image target lists must all have the same, non-zero length")
        t = torch.tensor([[_index(model, c) for c in row] for row in items], dtype=torch.long)
    else:
        t = torch.tensor([_index(model, c) for c in items], dtype=torch.long)
    return _check_batch(t, batch)


def _check_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.dim() not in (1, 2) or t.shape[0] != batch:
        raise DeepInsideError(
            f"got targets of shape {tuple(t.shape)} for {batch} images: give one class per image, "
            "or one list of classes per image"
        )
    return t


def _index(model: nn.Module, name: object) -> int:
    if isinstance(name, bool) or not isinstance(name, (int, str)):
        raise DeepInsideError(f"a class is an index or a name, got {name!r}")
    if isinstance(model, Classifier) and model._classes is not None:
        return model.classes.resolve(name)
    if isinstance(name, str) and not name.strip().isdigit():
        raise DeepInsideError(f"class {name!r}: name classes only with a deepinside Classifier; use an index")
    return int(name)
