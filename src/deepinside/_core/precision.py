"""How gradients run on each kind of device: which rewrites of the gradient
view are used there, and which of torch's process-wide numeric flags hold
while our calls run on CUDA.

On CUDA our gradients run with cuDNN on and TF32 off (convolutions and matrix
products in true float32): cuDNN in float32 is as exact as PyTorch's own
kernels and much faster, while TF32, PyTorch's default for cuDNN
convolutions, moves the maps visibly. ``deterministic`` calls turn cuDNN off
instead (see :data:`DETERMINISTIC_CUDA`). docs/gpu.md gives the measurements
and says what is not yet measured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class Rewrites:
    """The rewrites of the gradient view (``models._graph.simplify``) used on
    one kind of device. Each leaves dS_c/dI unchanged up to float round-off;
    they differ only in speed, which depends on the device's kernels."""

    fold_batch_norm: bool
    padding_in_convolution: bool
    channels_last: bool


#: Per device type, the rewrites used there: each only where it measured
#: faster (docs/benchmarks.md, docs/gpu.md). On CUDA, folding batch norm and
#: padding inside the convolution only remove kernels and copies, so they
#: stay on; channels-last is off, as float32 with TF32 off gains nothing from
#: the tensor-core layouts. ``benchmarks/gpu.py`` measures each one alone;
#: flip an entry here after such a run.
REWRITES: dict[str, Rewrites] = {
    "cpu": Rewrites(fold_batch_norm=True, padding_in_convolution=True, channels_last=True),
    "cuda": Rewrites(fold_batch_norm=True, padding_in_convolution=True, channels_last=False),
}


def rewrites_for(device: torch.device) -> Rewrites:
    """The rewrites for ``device``; a device type not in :data:`REWRITES`
    (mps, say: unmeasured) gets CUDA's, the choice made without measuring."""
    return REWRITES.get(device.type, REWRITES["cuda"])


#: How ``deterministic`` calls get bit-for-bit repeatable maps on CUDA:
#: ``"cudnn-off"`` runs PyTorch's own kernels (measured repeatable and close
#: to float64, but slower than cuDNN); ``"cudnn-deterministic"`` keeps cuDNN
#: with its deterministic algorithms (also measured repeatable, speed not
#: measured). docs/gpu.md has the numbers; ``benchmarks/gpu.py`` times both.
DETERMINISTIC_CUDA: Literal["cudnn-off", "cudnn-deterministic"] = "cudnn-off"

_REPEATABLE: ContextVar[bool] = ContextVar("deepinside_repeatable", default=False)


@contextmanager
def repeatable(on: bool = True) -> Iterator[None]:
    """Within the block (in this thread or task only), gradients are computed
    for bit-for-bit repeatable results. ``on=False`` changes nothing, so an
    outer ``repeatable()`` still holds."""
    if not on:
        yield
        return
    token = _REPEATABLE.set(True)
    try:
        yield
    finally:
        _REPEATABLE.reset(token)


def wants_repeatable() -> bool:
    """Whether the calling thread or task is inside :func:`repeatable`, or
    the caller asked torch for deterministic algorithms everywhere."""
    return _REPEATABLE.get() or torch.are_deterministic_algorithms_enabled()


def _has_precision_api() -> bool:
    """PyTorch 2.9 and later set TF32 per backend and operator (``fp32_precision``)."""
    try:
        _get("cudnn.conv.fp32_precision")
        _get("cuda.matmul.fp32_precision")
    except (AttributeError, RuntimeError):
        return False
    return True


Flags = dict[str, object]

# The older switches first: setting one also sets its operators' newer
# settings, which are then set as they were (a no-op where they agree).
_LEGACY_TF32 = ("cudnn.allow_tf32", "cuda.matmul.allow_tf32")
_OPERATOR_TF32 = ("cudnn.conv.fp32_precision", "cudnn.rnn.fp32_precision", "cuda.matmul.fp32_precision")


def _get(name: str) -> object:
    owner: object = torch.backends
    for part in name.split("."):
        owner = getattr(owner, part)
    return owner


def read_flags() -> Flags:
    """The process-wide flags our calls set on CUDA, as they are now. An older
    ``allow_tf32`` switch that refuses to answer (PyTorch does once the newer
    settings disagree with it) is left out, and so never written back."""
    flags: Flags = {
        "cudnn.enabled": _get("cudnn.enabled"),
        "cudnn.deterministic": _get("cudnn.deterministic"),
    }
    for name in _LEGACY_TF32:
        try:
            flags[name] = _get(name)
        except RuntimeError:
            pass
    if _has_precision_api():
        flags |= {name: _get(name) for name in _OPERATOR_TF32}
    return flags


def write_flags(flags: Flags) -> None:
    """Set the flags :func:`read_flags` names (any subset of them), in order."""
    for name, value in flags.items():
        owner, _, attribute = name.rpartition(".")
        setattr(_get(owner), attribute, value)


def our_flags(deterministic: bool) -> Flags:
    """What our calls change on CUDA: TF32 off; cuDNN on, unless a
    deterministic call runs and :data:`DETERMINISTIC_CUDA` says cuDNN off,
    or says cuDNN's deterministic algorithms (otherwise the caller's choice
    of algorithms stands)."""
    flags: Flags = {
        "cudnn.enabled": not (deterministic and DETERMINISTIC_CUDA == "cudnn-off"),
        "cudnn.allow_tf32": False,
        "cuda.matmul.allow_tf32": False,
    }
    if deterministic and DETERMINISTIC_CUDA == "cudnn-deterministic":
        flags["cudnn.deterministic"] = True
    if _has_precision_api():
        leaf = _true_float32_leaf()
        flags |= dict.fromkeys(_OPERATOR_TF32, leaf)
    return flags


def _true_float32_leaf() -> str:
    """The per-operator setting for true float32: ``"none"`` (inherit), as
    the older ``allow_tf32 = False`` leaves it, where the settings above the
    operators give float32; else ``"ieee"`` (which makes PyTorch's older
    getters raise, in every thread, until the caller's flags are back)."""
    above = (_get("fp32_precision"), _get("cudnn.fp32_precision"))
    return "none" if all(p in ("none", "ieee") for p in above) else "ieee"


class _CudaFlags:
    """Our flags while any of our calls runs on CUDA, in any thread; the
    caller's back when the last one leaves.

    The flags are process-wide, so a save and restore per call would let
    overlapping calls leave ours behind (the second saves the first's). One
    reference-counted section under a lock instead: the first call in saves
    the caller's flags, the last one out restores them, and while a
    deterministic call runs every call runs deterministically (slower, never
    wrong). The trade-off: the caller's own CUDA work in other threads
    during our calls runs with our flags too, and a flag the caller changes
    meanwhile is overwritten when the last call leaves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fast = 0
        self._deterministic = 0
        self._saved: Flags | None = None
        self._written: Flags = {}

    def _set(self, flags: Flags) -> None:
        """Write only the flags that change: rewriting one that stays would
        pass it through PyTorch's older TF32 switches, which other threads
        inside the section could see halfway."""
        write_flags({k: v for k, v in flags.items() if self._written.get(k, object()) != v})
        self._written = dict(flags)

    @contextmanager
    def __call__(self, device: torch.device, deterministic: bool = False) -> Iterator[None]:
        if device.type != "cuda":
            yield
            return
        with self._lock:
            if self._saved is None:
                self._saved = read_flags()
            if deterministic:
                self._deterministic += 1
            else:
                self._fast += 1
            self._set(self._saved | our_flags(self._deterministic > 0))
        try:
            yield
        finally:
            with self._lock:
                if deterministic:
                    self._deterministic -= 1
                else:
                    self._fast -= 1
                if self._fast + self._deterministic == 0:
                    saved, self._saved = self._saved, None
                    assert saved is not None
                    write_flags(saved)
                    self._written = {}
                else:
                    self._set(self._saved | our_flags(self._deterministic > 0))


#: ``with cuda_flags(device, deterministic):`` around every gradient computation.
cuda_flags = _CudaFlags()
