"""Attention weights from fused attention.

timm's and Hugging Face's vision transformers call
``F.scaled_dot_product_attention`` (SDPA), whose fused kernels never form
the attention matrix, so hooks and ``output_attentions`` see nothing. Inside
:func:`explicit_attention`, each SDPA call of the calling thread is computed
from its definition instead, ``A = softmax(Q K^T * scale + mask)``,
``out = A V``, and ``A`` is recorded, a node of the autograd graph (so
``dS/dA`` can be taken). Nothing is registered on any model; the caller's
model keeps its own attention setting (deepinside's private copy is switched
to SDPA where it was eager: see :func:`use_fused_attention`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


class _ExplicitAttention(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.maps: list[torch.Tensor] = []

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return self._attend(*args, **kwargs)
        return func(*args, **kwargs)

    def _attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
        **_: Any,
    ) -> torch.Tensor:
        # (dropout_p: deepinside runs models in eval mode, where callers pass 0.)
        if enable_gqa and key.shape[-3] != query.shape[-3]:
            repeats = query.shape[-3] // key.shape[-3]
            key, value = key.repeat_interleave(repeats, -3), value.repeat_interleave(repeats, -3)
        scale = scale if scale is not None else 1 / math.sqrt(query.shape[-1])
        logits = query @ key.transpose(-2, -1) * scale
        if is_causal:
            t, s = logits.shape[-2:]
            causal = torch.ones(t, s, dtype=torch.bool, device=logits.device).tril()
            logits = logits.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                logits = logits.masked_fill(~attn_mask, float("-inf"))
            else:
                logits = logits + attn_mask
        weights = logits.softmax(-1)
        self.maps.append(weights)
        return weights @ value


@contextmanager
def explicit_attention() -> Iterator[list[torch.Tensor]]:
    """Yield a list that receives the attention weights ``(B, heads, T, S)``
    of each SDPA call this thread makes inside the block, in call order."""
    mode = _ExplicitAttention()
    with mode:
        yield mode.maps


def use_fused_attention(module: nn.Module) -> bool:
    """Switch deepinside's private copy ``module`` to SDPA attention where it
    computes attention by hand (Hugging Face's ``eager``, timm's
    ``fused_attn=False``), so that :func:`explicit_attention` sees every
    attention call. True if anything was switched."""
    switched = False
    for m in module.modules():
        config = getattr(m, "config", None)
        set_attn_implementation = getattr(m, "set_attn_implementation", None)
        if getattr(config, "_attn_implementation", None) == "eager" and callable(set_attn_implementation):
            try:
                set_attn_implementation("sdpa")
                switched = True
            except (ValueError, ImportError, AttributeError):
                pass  # a model without SDPA support keeps its own attention
        if getattr(m, "fused_attn", None) is False:
            # (setattr: nn.Module's typed __setattr__ takes only tensors and modules.)
            setattr(m, "fused_attn", True)  # noqa: B010
            switched = True
    return switched


def self_attention_calls(model: nn.Module, example: torch.Tensor) -> list[tuple[int, ...]]:
    """The shapes of the attention weights one pass of ``example`` through
    deepinside's view of ``model`` forms (empty for a model without SDPA
    attention)."""
    from .gradients import scoring  # (the engine's view, which uses SDPA)

    with scoring(model, example) as (score, layout), torch.no_grad(), explicit_attention() as maps:
        score(layout(example))
    return [tuple(m.shape) for m in maps]
