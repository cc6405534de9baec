"""Answers computed without deepinside, from the papers' definitions, for
the transformer methods: shared by the tests and ``benchmarks/model_matrix.py``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def attention_map(model: nn.Module, x: torch.Tensor, target: list[int], method: str) -> torch.Tensor:
    """Attention rollout or relevance of a Hugging Face ViT-style classifier,
    from the weights its eager attention returns (``output_attentions``). The
    model is left in eager attention."""
    model.set_attn_implementation("eager")
    out = model(x.clone().requires_grad_(True), output_attentions=True)
    attentions = list(out.attentions)
    t, tokens = x.shape[0], attentions[0].shape[-1]
    eye = torch.eye(tokens, dtype=torch.float64)
    r = eye.expand(t, -1, -1)
    if method == "attention-rollout":
        for a in attentions:
            a = a.detach().double().mean(1) + eye
            r = (a / a.sum(-1, keepdim=True)) @ r
    else:
        grads = torch.autograd.grad(out.logits[torch.arange(t), target].sum(), attentions)
        for a, g in zip(attentions, grads):
            r = r + (g.double() * a.detach().double()).clamp(min=0).mean(1) @ r
    side = x.shape[-1] // model.config.patch_size
    row = r[:, 0, tokens - side * side :].reshape(t, 1, side, side)
    return F.interpolate(row, size=x.shape[-2:], mode="bilinear", align_corners=False).float()


def token_grad_cam(model: nn.Module, x: torch.Tensor, target: list[int], layer: nn.Module) -> torch.Tensor:
    """Grad-CAM on a layer's token sequence: the tokens after the leading ones
    (class, distillation, registers) on their square grid, by hand."""
    recorded: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: recorded.append(out))
    try:
        logits = model(x).logits
    finally:
        handle.remove()
    tokens = recorded[0]
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), tokens)
    patch = getattr(model.config, "patch_size", None)
    square = math.isqrt(tokens.shape[1]) ** 2 == tokens.shape[1]
    side = math.isqrt(tokens.shape[1]) if square else x.shape[-1] // patch
    prefix = tokens.shape[1] - side * side

    def grid(t: torch.Tensor) -> torch.Tensor:
        return t[:, prefix:].transpose(1, 2).reshape(len(x), -1, side, side)

    cam = F.relu((grid(grad).mean((2, 3), keepdim=True) * grid(tokens.detach())).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
