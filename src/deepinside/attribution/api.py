"""``attribute`` and ``saliency``: every method behind one call.

The paper's map for image I0 and class c is ``M = max_channel |dS_c/dI|`` at
I0 (Simonyan et al. 2013, section 3), with S_c the unnormalised class score;
the other methods and channel reductions are options of the same call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._core.precision import repeatable
from .._core.scores import ScoreTarget, Targets
from ..errors import DeepInsideError
from .methods import Method, Reduction, method_from_name, reduce_channels
from .targets import Target, resolve_targets


@dataclass(frozen=True)
class Attribution:
    """What a method found for a batch.

    ``raw``: ``(B, [K,] C, H, W)`` on the input (C: the input's channels, or 1
    for Grad-CAM), with its true scale and sign; ``map``: ``raw`` reduced over
    channels ``(B, [K,] H, W)``; ``scores``: class scores ``(B, classes)`` (the
    model's output tensor); ``targets``: the classes explained ``(B, [K])``,
    -1 where a score target was; ``completeness_error``: ``(B, [K])`` for
    integrated gradients; ``class_specific``: False where the map is the same
    for every class (attention rollout reads no score).
    """

    method: str
    raw: torch.Tensor
    map: torch.Tensor
    scores: torch.Tensor
    targets: torch.Tensor
    completeness_error: torch.Tensor | None = None
    class_specific: bool = True


def attribute(
    model: nn.Module,
    images: torch.Tensor,
    target: Target = None,
    method: str | Method = "gradient",
    reduce: Reduction = "max-abs",
    deterministic: bool = False,
    **options: object,
) -> Attribution:
    """Attribute each image's class score to its pixels.

    Args:
        model: a classifier ``(B, C, H, W) -> (B, classes)``, used in eval mode
            without being changed (flags, gradients, hooks: all left as they
            were). Its output may be a tensor, an object with ``.logits``
            (Hugging Face), a dict or a tuple (the first tensor is taken; wrap
            with ``load_model(module, output=...)`` to choose another).
        images: preprocessed batch ``(B, C, H, W)``; left unchanged.
        target: None for each image's top-1 class; a class for all images; a
            sequence of B classes; or B sequences of K classes (B*K attributions,
            batched). Names work when ``model`` is a :class:`~deepinside.Classifier`.
            Or a score: a callable ``f(output) -> (B,)`` or one of
            :mod:`deepinside.targets` (``class_sum``, ``multilabel``,
            ``region``, ``regression``).
        method: ``gradient`` (the paper's), ``deconvnet``, ``guided-backprop``,
            ``smoothgrad``, ``integrated-gradients``, ``gradient-x-input``,
            ``grad-cam``, ``guided-grad-cam``, or a method instance.
        reduce: channel reduction for ``map``: ``max-abs`` (the paper's),
            ``sum-abs``, ``l2`` or ``sum`` (signed).
        deterministic: bit-for-bit the same maps every time for the same
            inputs. Changes nothing on the CPU (already so); on CUDA it runs
            without cuDNN, several times slower (docs/gpu.md).
        **options: the method's options, e.g. ``samples=50, noise=0.15`` for
            smoothgrad or ``steps=50, baseline=...`` for integrated-gradients.

    >>> import torch, deepinside
    >>> model = deepinside.load_model()
    >>> a = attribute(model, torch.zeros(1, 3, 224, 224), "tabby", "integrated-gradients", steps=8)
    >>> a.raw.shape, a.map.shape, a.completeness_error.shape
    (torch.Size([1, 3, 224, 224]), torch.Size([1, 224, 224]), torch.Size([1]))
    """
    chosen = method_from_name(method, **options)
    reduce_channels(torch.zeros(1, 1, 1), reduce)  # an unknown reduction fails before any work
    if images.dim() != 4:
        raise DeepInsideError(f"images must be a batch (B, channels, H, W), got shape {tuple(images.shape)}")
    batch = images.shape[0]
    targets = resolve_targets(model, target, batch)
    with repeatable(deterministic):
        return _attribute(model, images, targets, chosen, reduce)


def _attribute(
    model: nn.Module, images: torch.Tensor, targets: Targets, chosen: Method, reduce: Reduction
) -> Attribution:
    batch = images.shape[0]
    if targets is None or isinstance(targets, ScoreTarget) or targets.dim() == 1:
        result = chosen.compute(model, images, targets)
        return Attribution(
            chosen.name,
            result.raw,
            reduce_channels(result.raw, reduce),
            result.scores,
            result.targets,
            result.completeness_error,
            chosen.class_specific,
        )
    k = targets.shape[1]
    result = chosen.compute_classes(model, images, targets)
    raw = result.raw.reshape(batch, k, *result.raw.shape[1:])
    error = None if result.completeness_error is None else result.completeness_error.reshape(batch, k)
    return Attribution(
        chosen.name,
        raw,
        reduce_channels(raw, reduce),
        result.scores.reshape(batch, k, -1)[:, 0],
        result.targets.reshape(batch, k),
        error,
        chosen.class_specific,
    )


def saliency(
    model: nn.Module,
    images: torch.Tensor,
    target: Target = None,
    method: str | Method = "gradient",
    reduce: Reduction = "max-abs",
    deterministic: bool = False,
    **options: object,
) -> torch.Tensor:
    """The saliency maps ``(B, H, W)`` (or ``(B, K, H, W)`` for per-image class
    lists) in the images' dtype and device; by default the paper's
    ``max over channels |dS_c/dI|``, unnormalised. See :func:`attribute`.

    >>> import torch, deepinside
    >>> model = deepinside.load_model()
    >>> saliency(model, torch.zeros(2, 3, 224, 224), target="tabby").shape
    torch.Size([2, 224, 224])
    """
    return attribute(model, images, target, method, reduce, deterministic=deterministic, **options).map
