"""Layers as the user names them, and the feature layer found when none is named.

A layer is named as in ``named_modules()`` of the module the user has (their
own network, not deepinside's wrapper around it), or given as the module
object itself. Grad-CAM, localisation and objectness need the last spatial
feature map; when no layer is named it is found by one probe pass.
"""

from __future__ import annotations

import collections
import contextvars
import difflib
import math
import threading
import weakref
from collections.abc import Callable

import torch
from torch import nn

from ..errors import DeepInsideError
from .graph import eval_mode, forward_pass
from .outputs import select_output

#: Modules whose output is a "convolution-like" feature map, listed in errors.
_CONV_LIKE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


def module_name(root: nn.Module, layer: str | nn.Module) -> str:
    """The name of ``layer`` in ``root.named_modules()``: a name checked to
    exist, or the name of the module object given. Refused in one line,
    with the closest names, when there is no such layer."""
    if isinstance(layer, nn.Module):
        name = next((n for n, m in root.named_modules() if m is layer), None)
        if not name:
            raise DeepInsideError(
                f"the {type(layer).__name__} given as the layer is "
                + ("the whole model" if name == "" else "not part of the model")
                + ": give one of its submodules"
            )
        return name
    if not isinstance(layer, str):
        raise DeepInsideError(f"a layer is a submodule name such as 'features' or the module, got {layer!r}")
    names = [n for n, _ in root.named_modules() if n]
    if layer in names:
        return layer
    raise DeepInsideError(_unknown_layer(root, layer, names))


def _unknown_layer(root: nn.Module, layer: str, names: list[str]) -> str:
    close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
    convs = [n for n, m in root.named_modules() if isinstance(m, _CONV_LIKE)][-3:]
    hint = f"; closest: {', '.join(close)}" if close else ""
    if convs:
        hint += f"; its last convolutions: {', '.join(convs)}"
    return f"the model has no layer named {layer!r}{hint}"


# The list the calling thread's probe records into: the hooks sit on the
# caller's model, which other threads may be running at the same time.
_PROBING: contextvars.ContextVar[list[tuple[str, torch.Tensor]] | None] = contextvars.ContextVar(
    "deepinside_feature_probe", default=None
)
_FOUND: weakref.WeakKeyDictionary[nn.Module, dict[tuple[object, ...], str]] = weakref.WeakKeyDictionary()
_FOUND_LOCK = threading.Lock()


def find_feature_layer(model: nn.Module, example: torch.Tensor, skip: frozenset[str] = frozenset()) -> str:
    """The path in ``model`` of its last spatial feature map: the last module
    (in the order calls finish, so a block after its layers) whose output is
    ``(B, K, h, w)`` with h, w > 1, computed from the input, called once a
    pass, that the scores depend on; on a transformer (token sequences after
    that map), the last norm layer whose patch tokens the scores depend on.
    Modules named in ``skip`` are not candidates. Found by one pass of one
    input like ``example`` and remembered while the model keeps the same
    modules."""
    key = (tuple(example.shape[1:]), skip, tuple(id(m) for m in model.modules()))
    with _FOUND_LOCK:
        try:
            known = _FOUND.setdefault(model, {})
        except TypeError:  # an unhashable module cannot be cached
            known = {}
        if key in known:
            return known[key]
    found = _last_feature_map(model, example[:1], skip)
    with _FOUND_LOCK:
        known[key] = found
    return found


def _last_feature_map(model: nn.Module, x: torch.Tensor, skip: frozenset[str]) -> str:
    x = x.detach().requires_grad_(True)
    recorded, scores = _probe(model, x)
    calls = collections.Counter(name for name, _ in recorded)
    spatial = [
        (i, name, out)
        for i, (name, out) in enumerate(recorded)
        if out.dim() == 4 and min(out.shape[-2:]) > 1 and calls[name] == 1 and name not in skip
    ]
    from_input = _computed_from(x, scores)
    used = [c for c in _used_by(scores, spatial) if c[2].grad_fn in from_input]
    if not used:
        raise DeepInsideError(
            "found no layer giving a spatial feature map (batch, channels, h, w) that the scores depend "
            "on: name the layer (--feature-layer NAME; in Python, layer=)"
        )
    position, name, grid = used[-1]
    if _tokens_follow(recorded[position + 1 :], grid):
        return _last_token_map(model, x, recorded[position + 1 :], scores, from_input) or name
    return name


def _last_token_map(
    model: nn.Module,
    x: torch.Tensor,
    later: list[tuple[str, torch.Tensor]],
    scores: torch.Tensor,
    from_input: set[object],
) -> str | None:
    """A transformer's feature layer: the last normalisation layer whose
    output is a token sequence ``(B, T, D)`` laid on a grid of the input,
    called once a pass, whose patch tokens the scores depend on (after the
    last block the head reads the class token alone, so the last block's own
    output has no gradient at the patches: the last block's input norm has)."""
    modules = dict(model.named_modules())
    calls = collections.Counter(name for name, _ in later)
    candidates = []
    for i, (name, out) in enumerate(later):
        norm = "norm" in type(modules[name]).__name__.lower()
        if norm and out.dim() == 3 and out.shape[0] == x.shape[0] and calls[name] == 1:
            grid = token_grid(out.shape[1], x.shape[-2:])
            if grid is not None and out.grad_fn in from_input:
                candidates.append((i, name, out, grid[0]))
    tensors = [out for _, _, out, _ in candidates]
    if not tensors:
        return None
    grads = torch.autograd.grad(scores.float().sum(), tensors, allow_unused=True, retain_graph=True)
    reaching = [
        name
        for (_, name, _, prefix), g in zip(candidates, grads)
        if g is not None and bool(g[:, prefix:].abs().sum() > 0)
    ]
    return reaching[-1] if reaching else None


def token_grid(
    tokens: int, size: tuple[int, int] | torch.Size, most_prefix: int = 16
) -> tuple[int, int, int] | None:
    """How a sequence of ``tokens`` lies on an input of ``size`` (H, W):
    ``(prefix, h, w)``, the fewest leading tokens (class, distillation,
    register tokens) that leave an h x w grid of the input's aspect ratio;
    None if there is no such grid."""
    height, width = int(size[0]), int(size[1])
    for prefix in range(0, min(most_prefix, tokens - 1) + 1):
        n = tokens - prefix
        h = max(1, round(math.sqrt(n * height / width)))
        w = n // h
        if h * w == n and abs(h / w - height / width) <= 0.1 * height / width:
            return prefix, h, w
    return None


def as_feature_map(output: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """A layer's output as a feature map ``(B, K, h, w)``: as it is, or a token
    sequence ``(B, T, D)`` without its leading tokens laid on its grid over an
    input of ``size`` (see :func:`token_grid`)."""
    if output.dim() == 4:
        return output
    if output.dim() == 3:
        grid = token_grid(output.shape[1], size)
        if grid is not None:
            prefix, h, w = grid
            return output[:, prefix:].transpose(1, 2).reshape(output.shape[0], output.shape[2], h, w)
    raise DeepInsideError(
        f"a layer output of shape {tuple(output.shape)} is no feature map (B, K, h, w) nor a token "
        f"sequence (B, tokens, dim) on a grid of the {int(size[0])}x{int(size[1])} input"
    )


def _tokens_follow(later: list[tuple[str, torch.Tensor]], grid: torch.Tensor) -> bool:
    """Whether the outputs ``later`` carry ``(B, tokens, dim)`` sequences of at
    least as many tokens as ``grid`` had positions: a patch embedding
    followed by transformer blocks, not a CNN's head."""
    positions = grid.shape[-2] * grid.shape[-1]
    return any(out.dim() == 3 and out.shape[1] >= positions for _, out in later)


def _probe(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[str, torch.Tensor]], torch.Tensor]:
    """Each submodule call's tensor output on ``x`` (which requires grad), in
    the order calls finish, and the scores, with their autograd graph kept."""
    with torch.enable_grad():
        return layer_outputs(model, x)


def layer_outputs(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[str, torch.Tensor]], torch.Tensor]:
    """Each submodule call's tensor output on ``x``, in the order calls finish
    (a block after its layers), and the scores: one eval-mode pass whose
    hooks, on the caller's model, see only this thread's pass. Gradients as
    the caller has them enabled."""
    recorded: list[tuple[str, torch.Tensor]] = []

    def record(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, out: object) -> None:
            if _PROBING.get() is recorded and isinstance(out, torch.Tensor):
                recorded.append((name, out))

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    token = _PROBING.set(recorded)
    try:
        with eval_mode(model), forward_pass():
            scores = select_output(model(x))
    finally:
        _PROBING.reset(token)
        for h in handles:
            h.remove()
    return recorded, scores


def _used_by(
    scores: torch.Tensor, candidates: list[tuple[int, str, torch.Tensor]]
) -> list[tuple[int, str, torch.Tensor]]:
    """The candidates ``scores`` depend on (a gradient path leads to them)."""
    tensors = [out for _, _, out in candidates if out.requires_grad]
    if not tensors or not scores.requires_grad:
        return []
    grads = torch.autograd.grad(scores.float().sum(), tensors, allow_unused=True, retain_graph=True)
    reached = {id(t) for t, g in zip(tensors, grads) if g is not None}
    return [c for c in candidates if id(c[2]) in reached]


def _computed_from(x: torch.Tensor, scores: torch.Tensor) -> set[object]:
    """The autograd nodes behind ``scores`` that depend on the input ``x``
    (a position bias or a learned token does not: it is no feature map)."""
    reaches: dict[object, bool] = {}
    stack: list[tuple[object, bool]] = [(scores.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None or (node in reaches and not expanded):
            continue
        children = [n for n, _ in getattr(node, "next_functions", ()) if n is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in children if c not in reaches)
            reaches.setdefault(node, False)
            continue
        reaches[node] = getattr(node, "variable", None) is x or any(reaches.get(c, False) for c in children)
    return {node for node, found in reaches.items() if found}
