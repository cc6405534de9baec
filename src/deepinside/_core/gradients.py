"""The gradient of class scores with respect to the input, fast and without
side effects on the caller's model or tensors, safe to call from several
threads at once on one model.

Speed comes from computing on a private *gradient view* of the model: an
eval-mode copy without parameter gradients, rewritten where that measured
faster on the device (batch norm folded into the convolutions, zero padding
done inside the convolutions, channels-last memory layout: ``precision.REWRITES``).
Each rewrite leaves dS_c/dI unchanged (checked numerically against the model
when the view is built); the view is rebuilt whenever the model's modules or
parameters change. The caller's hooks are not carried into the view. On CUDA
the calls run with cuDNN on and TF32 off (``precision.cuda_flags``).
"""

from __future__ import annotations

import contextvars
import copy
import logging
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..errors import DeepInsideError
from ..models.graph import eval_mode, forward_pass, scores_before_probabilities, set_eval, simplify
from ..models.outputs import select_output
from .attention import use_fused_attention
from .precision import cuda_flags, rewrites_for, wants_repeatable
from .rules import Rule, backward_rule
from .scores import Targets, target_scores

# Relative tolerance for accepting the folded view: float32 round-off through
# ~50 layers stays far below this; a wrong fold is far above it.
_FOLD_TOLERANCE = 1e-3

_LOG = logging.getLogger(__name__)


@dataclass
class _View:
    signature: tuple[object, ...]
    module: nn.Module
    channels_last: bool
    shared: bool = False  # the caller's own module (it could not be copied)


# Per model, one view per set of layers that must keep their own outputs.
_VIEWS: weakref.WeakKeyDictionary[nn.Module, dict[frozenset[str], _View]] = weakref.WeakKeyDictionary()
# One lock for the cache: threads asking at once for a model's view build it once.
_VIEWS_LOCK = threading.RLock()


def _signature(model: nn.Module, x: torch.Tensor) -> tuple[object, ...]:
    tensors = [*model.parameters(), *model.buffers()]
    # Modules without tensors count too: swapping a ReLU for a Softplus, or
    # changing a LeakyReLU's slope, changes the function (ids only: the view
    # must not keep the caller's modules alive).
    modules = tuple(
        (name, id(m), type(m), m.extra_repr(), id(m.__dict__.get("forward")))
        for name, m in model.named_modules()
    )
    tensor_keys = tuple((id(t), t._version, t.device, t.dtype) for t in tensors)
    return (x.device, x.dtype, rewrites_for(x.device), modules, tensor_keys)


def gradient_view(model: nn.Module, example: torch.Tensor, keep: frozenset[str] = frozenset()) -> _View:
    """The cached gradient view of ``model`` for inputs like ``example``; the
    layers named in ``keep`` are not folded, so hooks on them see their own outputs."""
    signature = _signature(model, example)
    with _VIEWS_LOCK:
        try:
            views = _VIEWS.setdefault(model, {})
        except TypeError:  # an unhashable module cannot be cached
            views = {}
        view = views.get(keep)
        if view is None or view.signature != signature:
            # Two rows prove the rewrites as well as a whole batch (a flatten that
            # mixes images shows at two), at a fraction of the cost of 32 at 2x.
            view = _build_view(model, example[:2].detach(), signature, keep)
            if not view.shared:  # a view holding the model itself would keep it alive forever
                views[keep] = view
    return view


def _build_view(
    model: nn.Module, example: torch.Tensor, signature: tuple[object, ...], keep: frozenset[str]
) -> _View:
    stripped = scores_before_probabilities(model, "the model", stacklevel=4, leaves=keep)
    try:
        reference = _private_copy(stripped)
    except (RuntimeError, TypeError, copy.Error):
        # Some modules (TorchScript's, say) cannot be copied: use the caller's
        # own, switched to eval mode only for the duration of each call.
        return _View(signature, stripped, channels_last=False, shared=True)
    rewrites = rewrites_for(example.device)  # (part of the signature: a changed table rebuilds)
    with torch.no_grad(), forward_pass():
        expected = select_output(reference(example))
        _check_scores(expected, example.shape[0])
        # Each rewrite proves itself on this model or is dropped: a speed-up
        # must never change what the model computes, nor make it fail. SDPA
        # attention lets the attention methods see every attention call.
        if use_fused_attention(reference) and not _agrees(reference, example, expected, "SDPA attention"):
            reference = _private_copy(stripped)
        folded = simplify(reference, keep, rewrites.fold_batch_norm, rewrites.padding_in_convolution)
        if folded is not None and _agrees(folded, example, expected, "batch-norm folding"):
            reference = folded
        channels_last = example.dim() == 4 and rewrites.channels_last
        if channels_last:
            reference = _to_memory_format(reference, torch.channels_last)
            as_last = example.clone(memory_format=torch.channels_last)
            if not _agrees(reference, as_last, expected, "channels-last layout"):
                reference, channels_last = _to_memory_format(reference, torch.contiguous_format), False
    return _View(signature, reference, channels_last)


def _to_memory_format(module: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``module.to(memory_format=...)``: its 4-d parameters and buffers in that layout."""
    # Module.to takes memory_format, as Tensor.to does, but its typed overloads omit it.
    to: Callable[..., nn.Module] = module.to
    return to(memory_format=memory_format)


def _private_copy(module: nn.Module) -> nn.Module:
    return set_eval(_copy_without_hooks(module)).requires_grad_(False)


def _agrees(candidate: nn.Module, example: torch.Tensor, expected: torch.Tensor, rewrite: str) -> bool:
    """Whether ``candidate`` gives the model's scores ``expected`` on ``example``."""
    # A graph module's own call prints the generated code of a failing line to
    # stderr; its forward raises the same error silently.
    run = candidate.forward if isinstance(candidate, fx.GraphModule) else candidate
    try:
        agrees = _close(select_output(run(example)), expected)
    except Exception as err:  # noqa: BLE001 - a rewrite that fails on the model is just not used
        _LOG.debug("gradient view: %s dropped: %s: %s", rewrite, type(err).__name__, err)
        return False
    if not agrees:
        _LOG.debug("gradient view: %s dropped: the scores changed", rewrite)
    return agrees


# The per-module hook registries (forward, pre-forward, backward, pre-backward).
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _copy_without_hooks(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` without the caller's hooks, which would fire
    on our passes (and still fire after the caller removed them). The hook
    registries are swapped for empty ones in the copy, not copied then
    cleared, so whatever the hooks hold is never copied."""
    memo: dict[int, object] = {}
    for m in module.modules():
        for name in _HOOK_DICTS:
            hooks = m.__dict__.get(name)
            if hooks is not None:
                memo[id(hooks)] = type(hooks)()  # one new registry per module
    copied = copy.deepcopy(module, memo)
    for m in copied.modules():
        if "_is_full_backward_hook" in m.__dict__:
            m._is_full_backward_hook = None
    return copied


def _close(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    if actual.shape != expected.shape:
        return False
    scale = expected.abs().max().clamp_min(1e-6)
    return bool(((actual - expected).abs().max() / scale) < _FOLD_TOLERANCE)


def _check_scores(scores: torch.Tensor, batch: int) -> None:
    """One row of scores per image: class scores ``(B, C)``, or any output a
    score target reads (a segmentation's ``(B, C, H, W)``, say)."""
    if scores.dim() == 0 or scores.shape[0] != batch:
        raise DeepInsideError(
            f"the model's output has shape {tuple(scores.shape)} for {batch} images: "
            "expected one row of scores per image, (batch, classes)"
        )


Score = Callable[[torch.Tensor], torch.Tensor]
Layout = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def scoring(
    model: nn.Module, example: torch.Tensor, deterministic: bool | None = None
) -> Iterator[tuple[Score, Layout]]:
    """The fast way to differentiate ``model``'s class scores, for inputs like ``example``.

    Yields ``(score, layout)``: ``score(x)`` gives the eval-mode scores (the
    model's output tensor, :func:`~deepinside.models.outputs.select_output`;
    class scores ``(B, C)`` for a classifier) through the gradient view; ``layout(t)``
    returns a detached copy of ``t`` in the memory layout the view runs fastest
    on. Gradients are enabled inside, also under ``no_grad``/``inference_mode``.
    On CUDA, TF32 is off inside, and cuDNN on unless ``deterministic`` (None:
    as the calling thread's :func:`~.precision.repeatable` says), for every
    thread of the process (see :data:`~.precision.cuda_flags`).

    >>> with scoring(model, images) as (score, layout):      # doctest: +SKIP
    ...     x = layout(images).requires_grad_(True)
    ...     (g,) = torch.autograd.grad(score(x)[:, 281].sum(), x)
    """
    with _viewing(model, example, frozenset(), deterministic) as (view, layout):
        yield _scorer(view), layout


@contextmanager
def repeatable_scoring(model: nn.Module, example: torch.Tensor) -> Iterator[tuple[Score, Layout]]:
    """:func:`scoring` for bit-for-bit repeatable results, for loops that
    promise the same output from the same seed (class models)."""
    with scoring(model, example, deterministic=True) as found:
        yield found


# The list the calling thread's (or task's) Grad-CAM hook records into: a
# view is shared by every thread calling with its model, so a hook on one of
# its layers fires on all their forward passes and must keep only its own.
_RECORDING: contextvars.ContextVar[list[torch.Tensor] | None] = contextvars.ContextVar(
    "deepinside_recording", default=None
)


@contextmanager
def capturing(
    model: nn.Module, example: torch.Tensor, layer: str
) -> Iterator[tuple[Score, Layout, list[torch.Tensor]]]:
    """Like :func:`scoring`, and also yields a list that receives the output of
    ``layer`` (a submodule name of ``model``) at each call of ``score`` made by
    this thread (other threads' calls on the same model are not recorded). The
    layer is kept out of batch-norm folding; its hook is removed on exit."""
    with _viewing(model, example, frozenset({layer}), None) as (view, layout):
        try:
            target = view.module.get_submodule(layer)
        except AttributeError:
            raise DeepInsideError(f"the model has no layer named {layer!r}") from None
        outputs: list[torch.Tensor] = []

        def record(_module: nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor | None:
            if _RECORDING.get() is not outputs:
                return None
            outputs.append(out)
            # The layers after it get a copy: an in-place op there (a
            # ReLU(inplace=True)) would otherwise overwrite what was recorded.
            return out.clone() if isinstance(out, torch.Tensor) else None

        handle = target.register_forward_hook(record)
        token = _RECORDING.set(outputs)
        try:
            yield _scorer(view), layout, outputs
        finally:
            _RECORDING.reset(token)
            handle.remove()


def _scorer(view: _View) -> Score:
    def score(x: torch.Tensor) -> torch.Tensor:
        with forward_pass():
            out = select_output(view.module(x))
        _check_scores(out, x.shape[0])
        return out

    return score


@contextmanager
def _viewing(
    model: nn.Module, example: torch.Tensor, keep: frozenset[str], deterministic: bool | None
) -> Iterator[tuple[_View, Layout]]:
    if not example.is_floating_point():
        raise DeepInsideError(f"images must be a floating-point tensor, got {example.dtype}")
    repeat = wants_repeatable() if deterministic is None else deterministic
    # The flags first: building the view runs the model to check it.
    with cuda_flags(example.device, repeat), torch.inference_mode(False), torch.enable_grad():
        view = gradient_view(model, example, keep)
        fmt = torch.channels_last if view.channels_last else torch.contiguous_format

        def layout(t: torch.Tensor) -> torch.Tensor:
            return t.detach().clone(memory_format=fmt)

        with eval_mode(view.module) if view.shared else nullcontext():
            yield view, layout


def input_gradient(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Targets,
    rule: Rule = "gradient",
    chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dS_t/dI for each image and its target, back-propagated by ``rule`` at
    the rectifiers (see :mod:`.rules`).

    Args:
        model: a classifier returning scores ``(B, C)`` (or any output a score target reads).
        inputs: preprocessed images ``(B, C, H, W)``; never modified.
        targets: class index per image ``(B,)``, a :class:`~.scores.ScoreTarget`,
            or None for each image's top class.
        rule: ``"gradient"``, ``"deconvnet"`` or ``"guided"``.
        chunk: at most this many images per pass (bounds memory); None: all.

    Returns:
        ``(gradient (B, C, H, W), scores, targets (B,))``, detached, on the
        input's device, contiguous (channels first); targets are -1 for a score target.
    """
    step = max(1, chunk or inputs.shape[0])
    grads, all_scores, used = [], [], []
    with scoring(model, inputs) as (score, layout):
        for lo in range(0, inputs.shape[0], step):
            x = layout(inputs[lo : lo + step]).requires_grad_(True)
            with backward_rule(rule) if rule != "gradient" else nullcontext() as mode:
                scores = score(x)
            if mode is not None and mode.count == 0:
                warnings.warn(
                    "no rectifier calls (relu, relu6, hardtanh(0, t), clamp(min=0)) were seen in the "
                    f"forward pass: {rule} equals the plain gradient",
                    stacklevel=3,
                )
            chosen, t = target_scores(scores, targets, lo)
            (grad,) = torch.autograd.grad(chosen.sum(), x)
            grads.append(grad)
            all_scores.append(scores.detach())
            used.append(t)
    return torch.cat(grads).contiguous(), torch.cat(all_scores), torch.cat(used)


# Operators as torch.export records them.
_ATEN_OPS = (torch._ops.OpOverload, torch._ops.OpOverloadPacket)


def compiled_part(model: nn.Module) -> str | None:
    """What in ``model`` runs compiled code, out of reach of Python-level rules
    and hooks: ``"TorchScript"``, ``"a torch.export program"``, or None."""
    for m in model.modules():
        if isinstance(m, torch.jit.ScriptModule):
            return "TorchScript"
        # torch.export's .module() is an fx graph of ATen operators: no
        # torch-function interception sees them, and its layers never run.
        if isinstance(m, fx.GraphModule) and any(isinstance(n.target, _ATEN_OPS) for n in m.graph.nodes):
            return "a torch.export program"
    return None


def require_eager(model: nn.Module, method: str, needs: str) -> None:
    """Refuse, in one line, a model whose compiled code ``method``'s ``needs``
    (rectifier rules, a layer hook) cannot reach: it would give a wrong map."""
    found = compiled_part(model)
    if found is not None:
        raise DeepInsideError(
            f"{method} needs an eager PyTorch module, but the model contains {found}, where its {needs} "
            "cannot act; use gradient, gradient-x-input, smoothgrad or integrated-gradients (plain "
            "gradients, no modified backward rules), or load the model as a Python nn.Module"
        )
