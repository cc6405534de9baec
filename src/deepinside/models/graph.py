"""Graph surgery on a copy of a classifier: remove a final softmax, fold batch
norm into the convolution before it, let convolutions that zero-pad their input
themselves pad inside the convolution (undilated depthwise ones on the CPU
also where "same" padding is lopsided). Each leaves the function's gradient with respect to the
input unchanged (up to float round-off) in eval mode."""

from __future__ import annotations

import copy
import inspect
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

# A last softmax or sigmoid turns scores into probabilities; the paper's S_c
# is the score before it (a multi-label head's logit, before its sigmoid).
_SOFTMAX_FUNCTIONS = {torch.softmax, F.softmax, torch.log_softmax, F.log_softmax, torch.sigmoid, F.sigmoid}
_SOFTMAX_METHODS = {"softmax", "log_softmax", "sigmoid"}
_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)
_FOLDABLE_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class _ConvLeafTracer(fx.Tracer):
    """Keeps every convolution (including subclasses with their own padding
    logic) as one node, so conv -> batch-norm pairs can be found, and keeps the
    modules named in ``leaves`` whole, so hooks on them still fire."""

    def __init__(self, leaves: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return (
            qualname in self.leaves
            or isinstance(m, (*_FOLDABLE_CONVS, *_BATCH_NORMS))
            or super().is_leaf_module(m, qualname)
        )


def set_eval(module: nn.Module) -> nn.Module:
    """``module.eval()`` done flag by flag, for modules whose ``eval`` refuses
    (a ``torch.export`` program is already fixed in eval semantics)."""
    for m in module.modules():
        m.training = False
    return module


class _EvalMode:
    """Modules in eval mode while any block using them runs, in any thread;
    each back in its own mode when the last one leaves. Counted per
    submodule: a save and restore per block would let two threads sharing
    a model put it back in training mode under the other's forward pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(submodule) -> (the submodule, blocks using it, its own training flag)
        self._users: dict[int, tuple[nn.Module, int, bool]] = {}

    @contextmanager
    def __call__(self, module: nn.Module) -> Iterator[None]:
        modules = list(module.modules())
        with self._lock:
            for m in modules:
                _, users, training = self._users.get(id(m), (m, 0, m.training))
                self._users[id(m)] = (m, users + 1, training)
                m.training = False
        try:
            yield
        finally:
            with self._lock:
                for m in modules:
                    _, users, training = self._users.pop(id(m))
                    if users > 1:
                        self._users[id(m)] = (m, users - 1, training)
                    else:
                        m.training = training


#: ``with eval_mode(module):`` ``module`` in eval mode for the block, then
#: each submodule back in its own mode (thread-safe on a shared module).
eval_mode = _EvalMode()


class _TraceLock:
    """fx's tracer patches ``nn.Module.__call__`` for the whole process while
    it traces, so a forward pass in another thread at that moment runs
    through the tracer and fails. Our forward passes run under
    :meth:`forward_pass` (many at once); a trace waits for them to finish,
    holds new ones back, and runs alone. The user's own forward passes in
    other threads are out of its reach."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._passes = 0
        self._tracing = False
        self._traces_waiting = 0
        self._depth = threading.local()  # a thread's nested forward passes count once

    @contextmanager
    def forward_pass(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            with self._changed:
                while self._tracing or self._traces_waiting:
                    self._changed.wait()
                self._passes += 1
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n = depth
            if depth == 0:
                with self._changed:
                    self._passes -= 1
                    self._changed.notify_all()

    @contextmanager
    def tracing(self) -> Iterator[None]:
        mine = 1 if getattr(self._depth, "n", 0) else 0  # a trace from inside our own forward pass
        with self._changed:
            self._traces_waiting += 1
            while self._tracing or self._passes > mine:
                self._changed.wait()
            self._traces_waiting -= 1
            self._tracing = True
        try:
            yield
        finally:
            with self._changed:
                self._tracing = False
                self._changed.notify_all()


_TRACE_LOCK = _TraceLock()

#: ``with forward_pass():`` around each forward pass deepinside runs, so that
#: no fx trace (which patches ``nn.Module.__call__`` process-wide) runs meanwhile.
forward_pass = _TRACE_LOCK.forward_pass


def trace(module: nn.Module, leaves: frozenset[str] = frozenset()) -> fx.GraphModule | None:
    """A traced graph of ``module`` sharing its submodules, or None if it cannot
    be traced; the submodules named in ``leaves`` stay whole (not traced into)."""
    if isinstance(module, (fx.GraphModule, torch.jit.ScriptModule)):
        return module if isinstance(module, fx.GraphModule) else None
    try:
        with _TRACE_LOCK.tracing():
            graph = _ConvLeafTracer(leaves).trace(module, concrete_args=_defaults_after_image(module))
    except Exception:  # noqa: BLE001 - any Python the tracer cannot follow means "not traceable"
        return None
    return fx.GraphModule(module, graph, module.__class__.__name__)


def _defaults_after_image(module: nn.Module) -> dict[str, object] | None:
    """The forward arguments after the first (the image) that have defaults,
    with them: traced as fixed values, as deepinside calls the model with the
    image alone (a ``forward(x, mask=None)`` is traced as ``forward(x)``)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    return {p.name: p.default for p in params[1:] if p.default is not inspect.Parameter.empty} or None


def _is_softmax(node: fx.Node, gm: fx.GraphModule) -> bool:
    if node.op == "call_function":
        return node.target in _SOFTMAX_FUNCTIONS
    if node.op == "call_method":
        return node.target in _SOFTMAX_METHODS
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), _SOFTMAX_MODULES)
    return False


def strip_softmax(module: nn.Module, leaves: frozenset[str] = frozenset()) -> tuple[nn.Module, str | None]:
    """``module`` without a final softmax / log-softmax / sigmoid, and the name
    of what was removed (None when there was none). Submodules stay shared
    with ``module``; those named in ``leaves`` stay whole (hooks on them fire)."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], _SOFTMAX_MODULES):
        return module[:-1], type(module[-1]).__name__
    gm = trace(module, leaves)
    if gm is None:
        return module, None
    output = next(n for n in gm.graph.nodes if n.op == "output")
    last = output.args[0]
    if not isinstance(last, fx.Node) or not _is_softmax(last, gm):
        return module, None
    output.args = (last.args[0],)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    if last.op == "call_module":
        return gm, type(gm.get_submodule(str(last.target))).__name__
    return gm, str(getattr(last.target, "__name__", last.target))


def scores_before_probabilities(
    module: nn.Module, who: str, stacklevel: int = 2, leaves: frozenset[str] = frozenset()
) -> nn.Module:
    """:func:`strip_softmax`, with a warning naming what was left out."""
    stripped, removed = strip_softmax(module, leaves)
    if removed is not None:
        warnings.warn(
            f"{who} ends in {removed}; using the scores before it "
            "(saliency is defined on unnormalised class scores)",
            stacklevel=stacklevel + 1,
        )
    return stripped


def simplify(
    module: nn.Module,
    keep: frozenset[str] = frozenset(),
    fold_batch_norm: bool = True,
    padding_in_convolution: bool = True,
) -> nn.Module | None:
    """An eval-mode copy of ``module`` computing the same function faster: each
    batch norm that directly follows a convolution is folded into that
    convolution's weight and bias (``fold_batch_norm``), and each convolution
    that zero-pads its own input first pads inside the convolution instead
    (``padding_in_convolution``; where the padding is symmetric, or the
    convolution depthwise, undilated, on the CPU). Modules named in ``keep``
    stay whole, so hooks on them see their own outputs.

    Returns None when the module cannot be traced. ``module`` is not changed.
    """
    gm = trace(set_eval(copy.deepcopy(module)), keep)
    if gm is None:
        return None
    if fold_batch_norm:
        _fold_batch_norms(gm, keep)
    if padding_in_convolution:
        _absorb_padding(gm, keep)
    return gm


def _fold_batch_norms(gm: fx.GraphModule, keep: frozenset[str]) -> None:
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or node.target in keep:
            continue
        bn, source = modules[node.target], node.args[0]
        if not isinstance(bn, _BATCH_NORMS) or not isinstance(source, fx.Node) or source.op != "call_module":
            continue
        conv = modules[str(source.target)]
        if not isinstance(conv, _FOLDABLE_CONVS) or len(source.users) != 1 or source.target in keep:
            continue
        if bn.running_mean is None or bn.running_var is None:
            continue  # batch statistics at eval time: nothing fixed to fold
        _fold_into(conv, bn, bn.running_mean, bn.running_var)
        node.replace_all_uses_with(source)
        gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    gm.delete_all_unused_submodules()


def _absorb_padding(gm: fx.GraphModule, keep: frozenset[str]) -> None:
    """TensorFlow "same" ports (EfficientNet's ``Conv2dStaticSamePadding``)
    copy every activation into a zero-padded tensor before an unpadded
    convolution, a large part of a forward and backward pass. Where the
    padding is symmetric the convolution pads for free instead. A strided
    "same" convolution pads one side more; a depthwise one then pads the
    larger amount on both sides and gets a kernel grown by zero taps on the
    other side, which reads exactly the same pixels: the zero taps cost less
    than the copy, where a dense convolution's would not (docs/benchmarks.md)."""
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in keep:
            continue
        conv = gm.get_submodule(str(node.target))
        if not isinstance(conv, nn.Conv2d):
            continue
        pad = _own_zero_padding(conv)
        if pad is None:
            continue
        left, right, top, bottom = pad.padding
        symmetric = left == right and top == bottom
        if not symmetric and not _grows_cheaply(conv):
            continue
        y, x = max(top, bottom), max(left, right)
        # Zero taps in front where that side pads less, behind where the other does.
        weight = F.pad(conv.weight.detach(), (x - left, x - right, y - top, y - bottom))
        plain = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            (weight.shape[-2], weight.shape[-1]),
            _pair(conv.stride),
            (y, x),
            _pair(conv.dilation),
            conv.groups,
            conv.bias is not None,
        )
        plain.weight = (
            conv.weight if symmetric else nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
        )
        plain.bias = conv.bias
        parent, _, name = str(node.target).rpartition(".")
        setattr(gm.get_submodule(parent), name, plain)


def _grows_cheaply(conv: nn.Conv2d) -> bool:
    """Whether zero taps cost ``conv`` less than a padded copy of its input:
    measured for undilated depthwise convolutions on the CPU (cuDNN's fast
    depthwise kernels may not take the grown sizes)."""
    return conv.groups == conv.in_channels and conv.dilation == (1, 1) and conv.weight.device.type == "cpu"


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's stride or dilation as the pair its constructor takes."""
    return values[0], values[1]


def _own_zero_padding(conv: nn.Conv2d) -> nn.ZeroPad2d | None:
    """The ZeroPad2d a Conv2d subclass applies to its input (its only child),
    when it has no padding of its own."""
    if type(conv) is nn.Conv2d:
        return None
    children = list(conv.children())
    if len(children) != 1 or not isinstance(children[0], nn.ZeroPad2d):
        return None
    if conv.padding != (0, 0) or conv.padding_mode != "zeros" or min(children[0].padding) < 0:
        return None  # (negative padding crops)
    return children[0]


@torch.no_grad()
def _fold_into(
    conv: nn.Conv1d | nn.Conv2d | nn.Conv3d,
    bn: nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d,
    mean: torch.Tensor,
    var: torch.Tensor,
) -> None:
    """Folds ``bn``, with its running ``mean`` and ``var``, into ``conv``'s weight and bias."""
    scale = bn.weight / torch.sqrt(var + bn.eps) if bn.affine else torch.rsqrt(var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(scale)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    conv.weight = nn.Parameter(conv.weight * scale.view(shape), requires_grad=False)
    conv.bias = nn.Parameter((bias - mean) * scale + shift, requires_grad=False)


__all__ = ["scores_before_probabilities", "set_eval", "simplify", "strip_softmax", "trace"]
