"""Classifiers: the built-in offline ImageNet models and users' own."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch

from ..errors import DeepInsideError
from ._graph import set_eval
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL, load_builtin
from .classifier import Classifier, Prediction, with_default_classes
from .custom import load_network, load_state_dict_file
from .labels import ClassIndex, ClassInfo, imagenet_classes
from .preprocessing import Placement, Preprocessing


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    weights: str | os.PathLike[str] | None = None,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize: str | None = None,
    feature_layer: str | None = None,
) -> Classifier:
    """A ready classifier, offline.

    ``name`` is a built-in model (``efficientnet_lite0``, the default;
    ``efficientnet_lite1``, ``efficientnet_lite2`` with their extras), a
    TorchScript file, a ``torch.export`` program (``.pt2``), or
    ``"package.module:factory"`` returning an
    ``nn.Module``. ``resize`` is ``"stretch"`` (the default: the whole photo
    is seen, so maps cover it) or ``"center-crop"``. A user model needs its preprocessing: ``input_size`` and,
    unless ImageNet's, ``mean``/``std`` in the [0, 1] pixel scale. ``feature_layer`` names the
    submodule whose output is the last convolutional feature map (for Grad-CAM; the built-in
    models declare theirs).

    >>> model = load_model()
    >>> model.preprocessing.input_size
    (224, 224)
    """
    if name in BUILTIN_MODELS:
        if weights is not None or input_size is not None or mean is not None or std is not None:
            raise DeepInsideError(f"{name} is built in: it takes no weights, input size, mean or std")
        model = load_builtin(name)
        if feature_layer is not None:
            model = Classifier(
                model.net, model.preprocessing, model.declared_classes, feature_layer, name=name
            )
        if resize is not None:
            model.preprocessing = dataclasses.replace(model.preprocessing, resize=resize)  # type: ignore[arg-type]
        return model
    net = set_eval(load_network(name, weights))
    if input_size is None:
        raise DeepInsideError(f"model {name!r}: give its input size (--input-size, e.g. 224)")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2:
        raise DeepInsideError(f"input size must be one number or HEIGHT WIDTH, got {input_size}")
    prep = Preprocessing(
        input_size=(int(size[0]), int(size[1])),
        mean=tuple(mean) if mean is not None else Preprocessing.mean,  # type: ignore[arg-type]
        std=tuple(std) if std is not None else Preprocessing.std,  # type: ignore[arg-type]
        resize=resize or "stretch",  # type: ignore[arg-type]
    )
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, 3, *prep.input_size))
    except Exception as err:  # noqa: BLE001 - the user's network can raise anything
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeepInsideError(
            f"model {name!r} failed on a 1x3x{prep.input_size[0]}x{prep.input_size[1]} input ({first}): "
            "check --input-size"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise DeepInsideError(
            f"model {name!r} returned a {type(out).__name__}, not a tensor of class scores (batch, classes)"
        )
    if out.dim() != 2:
        raise DeepInsideError(
            f"model {name!r} is not a classifier: its output has shape {tuple(out.shape)}, "
            "expected (batch, classes)"
        )
    return Classifier(
        net, prep, with_default_classes(out.shape[1]), feature_layer, name=os.path.basename(name)
    )


__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "ClassIndex",
    "ClassInfo",
    "Classifier",
    "Placement",
    "Prediction",
    "Preprocessing",
    "imagenet_classes",
    "load_model",
    "load_state_dict_file",
]
