"""The scores in whatever a model returns: a tensor, a Hugging Face output
object (``.logits``), a dict or a tuple, so that a user's model is explained
as it is, without a wrapper."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

import torch
from torch import fx

from ..errors import DeepInsideError

#: How to find the scores in a model's output: None (the default rule), a key
#: or attribute name, a position in a tuple, or a callable of the output.
OutputSelector = None | str | int | Callable[[object], torch.Tensor]


def select_output(out: object, output: OutputSelector = None) -> torch.Tensor:
    """The score tensor in a model's output ``out``.

    By default: ``out`` itself if it is a tensor; else its ``logits`` (an
    attribute, as Hugging Face's output objects have, or a dict key); else the
    first tensor of a dict, tuple or list. ``output`` overrides the rule: a key
    or attribute name, a position, or a callable returning the tensor."""
    if output is None and isinstance(out, fx.Proxy):
        return cast(torch.Tensor, out)  # traced: the Proxy stands in for the score tensor
    found: object
    if callable(output):
        found = output(out)
    elif isinstance(output, str):
        found = out.get(output) if isinstance(out, Mapping) else getattr(out, output, None)
    elif isinstance(output, int) and not isinstance(output, bool):
        found = out[output] if isinstance(out, (tuple, list)) else None
    elif output is None:
        found = _default_scores(out)
    else:
        raise DeepInsideError(f"output is a key, a position or a callable, got {output!r}")
    if not isinstance(found, torch.Tensor):
        raise DeepInsideError(
            f"the model's output ({_describe(out)}) holds no score tensor"
            + (f" at {output!r}" if output is not None and not callable(output) else "")
            + ": say where its scores are with output= (a key, a position or a callable)"
        )
    return found


def _default_scores(out: object) -> object:
    if isinstance(out, torch.Tensor):
        return out
    logits = out.get("logits") if isinstance(out, Mapping) else getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    values = out.values() if isinstance(out, Mapping) else out if isinstance(out, (tuple, list)) else ()
    return next((v for v in values if isinstance(v, torch.Tensor)), None)


def _describe(out: object) -> str:
    if isinstance(out, torch.Tensor):
        return f"a tensor {tuple(out.shape)}"
    if isinstance(out, Mapping):
        return f"a {type(out).__name__} with keys {', '.join(map(str, out))}"
    return f"a {type(out).__name__}"
