"""What to explain: user words for classes resolved to index tensors, in one place."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DeepInsideError
from ..models.classifier import Classifier

#: A class named by index (NumPy integers too), or (with a :class:`Classifier`) by WordNet id or name.
ClassName = int | str
#: None (top class per image), one class for all images, one per image, or a
#: list of classes per image (several maps per image, one batched pass).
Target = None | ClassName | Sequence[ClassName] | Sequence[Sequence[ClassName]] | torch.Tensor | np.ndarray


def resolve_targets(model: nn.Module, target: Target, batch: int) -> torch.Tensor | None:
    """``target`` as class indices: None, ``(B,)``, or ``(B, K)``."""
    if target is None:
        return None
    if isinstance(target, np.ndarray) and target.dtype.kind in "iu":
        target = torch.as_tensor(target)
    if isinstance(target, torch.Tensor):
        t = target.long().cpu()
        if t.dim() == 0:
            return t.expand(batch).clone()
        return _check_batch(t, batch)
    if isinstance(target, str) or not isinstance(target, Iterable):  # one class for all images
        return torch.full((batch,), class_index(model, target), dtype=torch.long)
    items = list(target)
    if items and all(_is_row(i) for i in items):
        widths = {len(i) for i in items}
        if len(widths) != 1 or 0 in widths:
            raise DeepInsideError("per-image target lists must all have the same, non-zero length")
        t = torch.tensor([[class_index(model, c) for c in row] for row in items], dtype=torch.long)
    else:
        t = torch.tensor([class_index(model, c) for c in items], dtype=torch.long)
    return _check_batch(t, batch)


def _check_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.dim() not in (1, 2) or t.shape[0] != batch:
        raise DeepInsideError(
            f"got targets of shape {tuple(t.shape)} for {batch} images: give one class per image, "
            "or one list of classes per image"
        )
    return t


def _is_row(item: object) -> bool:
    """One image's list of classes."""
    return isinstance(item, (list, tuple)) or (isinstance(item, np.ndarray) and item.ndim == 1)


def _is_index(value: object) -> bool:
    """An integer of any kind (Python's, NumPy's, anything with ``__index__``),
    but not a bool: True is no class."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def class_index(model: nn.Module, name: object) -> int:
    """A user's word for a class as an index: names only with a Classifier."""
    if not (isinstance(name, str) or _is_index(name)):
        raise DeepInsideError(f"a class is an index or a name, got {name!r}")
    if not isinstance(name, str):
        name = operator.index(name)  # type: ignore[arg-type]
    if isinstance(model, Classifier) and model.declared_classes is not None:
        return model.classes.resolve(name)
    if isinstance(name, str) and not name.strip().isdigit():
        if isinstance(model, Classifier):
            raise DeepInsideError(
                f"class {name!r}: model {model.name!r} has no class names; give them "
                "(Classifier(..., classes=[...]) or load_model(..., classes=...)), or name the class by index"
            )
        raise DeepInsideError(
            f"class {name!r}: a plain nn.Module has no class names; use an index, or wrap the model "
            "with deepinside.load_model(module, input_size=..., classes=[...])"
        )
    if int(name) < 0:
        raise DeepInsideError(f"class index {int(name)} is negative: classes are numbered from 0")
    return int(name)
