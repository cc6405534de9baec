"""Sanity check by cascading model-parameter randomisation (Adebayo et al. 2018).

Layers are re-initialised from the output down (in the order a forward pass
calls them, backwards), one after another; after each
checkpoint the map is recomputed and compared with the original map. A method
whose map barely changes while the model is destroyed does not explain the
model, and fails.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..attribution import attribute
from ..attribution.methods import Method, Reduction
from ..models.classifier import user_layer_name
from ..models.graph import eval_mode, forward_pass
from ._stats import spearman, ssim

#: A map whose rank correlation with the original stays above this on average
#: over the cascade survives the model's destruction: it does not depend on
#: what the model learned (Adebayo et al.'s finding for guided backprop).
FAIL_ABOVE = 0.5


@dataclass(frozen=True)
class SanityResult:
    method: str
    layers: list[str]  # the last layer randomised at each checkpoint, top down
    spearman: torch.Tensor  # (checkpoints, B)
    ssim: torch.Tensor  # (checkpoints, B)

    @property
    def final_spearman(self) -> float:
        """Mean rank correlation once every layer is randomised."""
        return float(self.spearman[-1].mean())

    @property
    def survival(self) -> float:
        """Mean rank correlation over the whole cascade."""
        return float(self.spearman.mean())

    @property
    def passed(self) -> bool:
        return self.survival <= FAIL_ABOVE


def parametric_layers(model: nn.Module, example: torch.Tensor | None = None) -> list[str]:
    """Names of modules that own parameters directly: in the order a forward
    pass of ``example`` first calls them (a module may be defined before the
    layers that feed it), else in definition order. Modules the pass never
    calls, or all of them where hooks cannot see the calls (TorchScript),
    keep their definition order."""
    defined = [name for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if example is None:
        return defined
    called: list[str] = []
    handles = []
    try:
        for name in defined:
            handles.append(
                model.get_submodule(name).register_forward_hook(
                    lambda _m, _i, _o, name=name: called.append(name) if name not in called else None
                )
            )
        with torch.no_grad(), eval_mode(model), forward_pass():
            model(example)
    except RuntimeError:
        if len(handles) == len(defined):
            raise  # the forward pass itself failed
        return defined  # a module that takes no Python hooks (TorchScript)
    finally:
        for h in handles:
            h.remove()
    return called + [name for name in defined if name not in called]


def cascading_randomization(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str | Method = "gradient",
    reduce: Reduction = "max-abs",
    checkpoints: int = 8,
    seed: int = 0,
    deterministic: bool = False,
    **options: object,
) -> SanityResult:
    """Randomise ``model``'s layers top-down on a private copy (``model`` is
    not changed) and compare each map with the original.

    Each parameter tensor is redrawn from a normal with its own mean and
    standard deviation, so activations stay in range while what was learned
    is gone. ``deterministic``: the same maps bit for bit every time (see
    :func:`deepinside.attribute`).
    """
    original = attribute(model, images, targets, method, reduce, deterministic=deterministic, **options)
    victim = copy.deepcopy(model)
    layers = parametric_layers(victim, images[:1])[::-1]
    marks = sorted({int(round(v)) for v in np.linspace(1, len(layers), max(1, checkpoints))})
    generator = torch.Generator().manual_seed(seed)
    rhos, sims, names = [], [], []
    done = 0
    for mark in marks:
        for name in layers[done:mark]:
            _randomize(victim.get_submodule(name), generator)
        done = mark
        now = attribute(victim, images, targets, method, reduce, deterministic=deterministic, **options).map
        rhos.append(spearman(original.map, now))
        sims.append(ssim(original.map, now))
        names.append(user_layer_name(model, layers[mark - 1]))
    return SanityResult(original.method, names, torch.stack(rhos), torch.stack(sims))


@torch.no_grad()
def _randomize(module: nn.Module, generator: torch.Generator) -> None:
    for p in module.parameters(recurse=False):
        if p.numel() < 2:
            continue
        mean, std = float(p.mean()), float(p.std())
        fresh = torch.randn(p.shape, generator=generator, dtype=p.dtype) * std + mean
        p.copy_(fresh.to(p.device))
