"""Backward rules at ReLU-like units: the paper's section 4.

Back-propagation, DeconvNet and guided backprop differ only in what the
backward pass does at a rectifier ``y = clamp(x, 0, upper)``:

- gradient:        g_in = g_out * 1[0 < x < upper]          (the forward input's sign)
- deconvnet:       g_in = max(g_out, 0)                     (the returning signal's sign)
- guided backprop: g_in = max(g_out, 0) * 1[0 < x < upper]  (both)

The rules are applied by intercepting the rectifier *functions* while the
forward pass runs (a ``TorchFunctionMode``), not by hooking ``nn.ReLU``
modules, so they also hold for ``F.relu``, in-place ReLU, ReLU6, hardtanh(0, t)
and ``clamp(min=0)`` inside fused blocks. Nothing is registered on the model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Rule = Literal["gradient", "deconvnet", "guided"]


class _DeconvRectifier(torch.autograd.Function):
    """Forward: the rectifier. Backward: the positive part of the returning
    signal, whatever the forward input was."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, upper: float | None) -> torch.Tensor:
        return x.clamp(min=0.0, max=upper)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.clamp(min=0.0), None


def _positive_part(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0.0)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


# Each parser returns (upper bound or None, in place?) for a ReLU-like call, or
# None when the call is not a rectifier at 0 (e.g. hardtanh(-1, 1)).
_Parse = Callable[[tuple[Any, ...], dict[str, Any]], "tuple[float | None, bool] | None"]


def _relu(inplace_default: bool) -> _Parse:
    return lambda a, k: (None, bool(_arg(a, k, 1, "inplace", inplace_default)))


def _relu6(a: tuple[Any, ...], k: dict[str, Any]) -> tuple[float | None, bool]:
    return 6.0, bool(_arg(a, k, 1, "inplace", False))


def _hardtanh(inplace_default: bool) -> _Parse:
    def parse(a: tuple[Any, ...], k: dict[str, Any]) -> tuple[float | None, bool] | None:
        low, high = _number(_arg(a, k, 1, "min_val", -1.0)), _number(_arg(a, k, 2, "max_val", 1.0))
        return (high, bool(_arg(a, k, 3, "inplace", inplace_default))) if low == 0.0 else None

    return parse


def _clamp(inplace: bool) -> _Parse:
    def parse(a: tuple[Any, ...], k: dict[str, Any]) -> tuple[float | None, bool] | None:
        low, high = _arg(a, k, 1, "min", None), _arg(a, k, 2, "max", None)
        if _number(low) != 0.0 or (high is not None and _number(high) is None):
            return None
        return _number(high), inplace

    return parse


_RECTIFIERS: dict[Callable[..., Any], _Parse] = {
    torch.relu: _relu(False),
    torch.relu_: _relu(True),
    F.relu: _relu(False),
    F.relu_: _relu(True),
    torch.Tensor.relu: _relu(False),
    torch.Tensor.relu_: _relu(True),
    F.relu6: _relu6,
    F.hardtanh: _hardtanh(False),
    F.hardtanh_: _hardtanh(True),
    torch.clamp: _clamp(False),
    torch.clip: _clamp(False),
    torch.Tensor.clamp: _clamp(False),
    torch.Tensor.clip: _clamp(False),
    torch.clamp_: _clamp(True),
    torch.Tensor.clamp_: _clamp(True),
    torch.Tensor.clip_: _clamp(True),
}


class backward_rule(TorchFunctionMode):
    """Within this context, rectifiers computed on tensors that require grad
    back-propagate by ``rule``. Use around the forward pass only.

    >>> with backward_rule("guided"):        # doctest: +SKIP
    ...     scores = model(x)
    """

    def __init__(self, rule: Rule) -> None:
        super().__init__()
        if rule not in ("gradient", "deconvnet", "guided"):
            raise ValueError(f"unknown backward rule {rule!r}")
        self.rule = rule
        self.count = 0  # rectifiers seen, so callers can tell a model has none

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        parse = _RECTIFIERS.get(func)
        x = args[0] if args else kwargs.get("input")
        if self.rule == "gradient" or parse is None or not isinstance(x, torch.Tensor) or not x.requires_grad:
            return func(*args, **kwargs)
        parsed = parse(args, kwargs)
        if parsed is None:
            return func(*args, **kwargs)
        upper, inplace = parsed
        self.count += 1
        if self.rule == "guided":
            # The native op masks by the forward input; a hook on its output
            # first keeps only the positive part of the returning signal.
            out = func(*args, **kwargs)
            out.register_hook(_positive_part)
            return out
        out = _DeconvRectifier.apply(x, upper)
        if inplace:  # keep in-place semantics: the caller may use x itself afterwards
            return x.copy_(out)
        return out


class max_pool_counter(TorchFunctionMode):
    """Counts the max-pooling calls of the forward passes run inside it.

    DeconvNet's rule ignores the forward pass at rectifiers, so its map
    depends on the image only through input-dependent steps such as max
    pooling's switches; on a network without them it is the same for every
    image (docs/methods.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if "max_pool" in getattr(func, "__name__", ""):
            self.count += 1
        return func(*args, **(kwargs or {}))
