"""What a vision transformer's attention says, from its attention weights
``A`` ``(B, heads, T, T)`` per block (recorded by
:func:`deepinside._core.attention.explicit_attention`).

- Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
  Transformers"): each block's heads fused, the identity added for the
  residual connection, rows renormalised, multiplied over the blocks. It
  says which tokens flow into the class token, for every class alike.
- Attention relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model
  Explainability for Interpreting Bi-Modal and Encoder-Decoder
  Transformers", ICCV): ``R = I``; per block ``R += mean_h (dS_c/dA * A)^+ R``.
  The gradient makes it class-specific.

Both read the class token's row over the patch tokens, laid on the token grid.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..errors import DeepInsideError

HeadFusion = Literal["mean", "max", "min"]


def self_attention(maps: list[torch.Tensor], batch: int) -> list[torch.Tensor]:
    """``maps`` checked to be one global self-attention ``(B, heads, T, T)``
    per block over the same T tokens, as a ViT's are."""
    check_self_attention([tuple(m.shape) for m in maps], batch)
    return maps


def check_self_attention(shapes: list[tuple[int, ...]], batch: int) -> None:
    """Refuse, in one line, attention weights of ``shapes`` that are not one
    global self-attention ``(B, heads, T, T)`` per block over the same tokens."""
    if not shapes:
        raise DeepInsideError(
            "found no attention in the model (no scaled_dot_product_attention call): the attention "
            "methods need a transformer whose attention runs through SDPA (timm, Hugging Face)"
        )
    tokens = shapes[0][-1]
    if any(len(s) != 4 or s[0] != batch or s[-2:] != (tokens, tokens) for s in shapes):
        raise DeepInsideError(
            "the model's attention is not one global self-attention over the same tokens per block "
            "(windowed or cross attention, as in Swin): the attention methods read a class token's "
            "attention to every patch; use grad-cam or the gradient methods"
        )


def rollout(
    maps: list[torch.Tensor], head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0
) -> torch.Tensor:
    """The attention rollout ``(B, T, T)`` of per-block weights ``(B, heads, T, T)``."""
    fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}[head_fusion]
    flow = None
    for weights in maps:
        a = fuse(weights.detach().double())
        if discard_ratio > 0:
            a = _discard_lowest(a, discard_ratio)
        a = a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        flow = a if flow is None else a @ flow
    assert flow is not None
    return flow


def _discard_lowest(a: torch.Tensor, ratio: float) -> torch.Tensor:
    """Each image's fused attention with its lowest ``ratio`` of entries set to
    zero, the class token's attention to itself always kept (as vit-explain)."""
    flat = a.flatten(1).clone()
    k = int(flat.shape[1] * ratio)
    if k:
        flat.scatter_(1, flat.topk(k, dim=1, largest=False).indices, 0.0)
        flat[:, 0] = a[:, 0, 0]
    return flat.view_as(a)


def relevance(maps: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """Chefer et al.'s relevance ``(B, T, T)`` from per-block weights and their
    gradients ``dS_c/dA``, both ``(B, heads, T, T)``."""
    tokens = maps[0].shape[-1]
    r = torch.eye(tokens, dtype=torch.float64, device=maps[0].device).expand(maps[0].shape[0], -1, -1)
    for weights, grad in zip(maps, grads):
        a = (grad.double() * weights.detach().double()).clamp(min=0).mean(1)
        r = r + a @ r
    return r
