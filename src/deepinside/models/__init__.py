"""Classifiers: the built-in offline ImageNet models and users' own."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import DeepInsideError
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL, load_builtin
from .classifier import (
    Classifier,
    Prediction,
    class_index_of,
    feature_layer_path,
    layer_path,
    user_layer_name,
    with_default_classes,
)
from .custom import load_network, load_state_dict_file
from .graph import eval_mode, set_eval
from .hf import is_pretrained_folder, load_pretrained
from .labels import ClassIndex, ClassInfo, imagenet_classes, read_class_file
from .outputs import OutputSelector, select_output
from .preprocessing import Placement, Preprocessing, ResizePolicy


def load_model(
    name: str | os.PathLike[str] | nn.Module = DEFAULT_MODEL,
    *,
    weights: str | os.PathLike[str] | None = None,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize: ResizePolicy | None = None,
    feature_layer: str | nn.Module | None = None,
    classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None = None,
    output: OutputSelector = None,
) -> Classifier:
    """A ready classifier, offline, in eval mode (a module you pass keeps its own flags).

    ``name`` is a built-in model (``efficientnet_lite0``, the default;
    ``efficientnet_lite1``, ``efficientnet_lite2`` with their extras), a
    TorchScript file, a ``torch.export`` program (``.pt2``),
    ``"package.module:factory"`` returning an ``nn.Module`` (the working
    folder is searched first, as ``python -m`` does), a folder written by a
    Hugging Face model's ``save_pretrained`` (with ``deepinside[hf]``), or an
    ``nn.Module`` itself (used as it is: deepinside runs it in eval mode
    without changing its flags). ``resize`` is ``"stretch"`` (the default:
    the whole photo is seen, so maps cover it) or ``"center-crop"``. A user
    model needs its preprocessing: ``input_size`` and, unless ImageNet's,
    ``mean``/``std`` in the [0, 1] pixel scale, one value per input channel
    (one value: a greyscale model). ``feature_layer`` names the submodule
    (as in the network's ``named_modules()``, or the module itself) whose
    output is the last convolutional feature map, for Grad-CAM and
    localisation; by default it is found when first needed. ``classes``
    names the outputs in order: a list of strings or a class file (one class
    per line; see :func:`~deepinside.models.labels.read_class_file`); by
    default a user's model has ImageNet's names for 1000 outputs and
    ``class 0``, ``class 1``, ... otherwise. ``output`` says where the scores
    are in what the network returns (see
    :func:`~deepinside.models.outputs.select_output`): by default a tensor,
    ``.logits`` or the first tensor of a dict or tuple.

    >>> model = load_model()
    >>> model.preprocessing.input_size, model.training
    ((224, 224), False)
    """
    if isinstance(name, Classifier):
        raise DeepInsideError(
            f"{name.name} is already a deepinside Classifier: use it as it is, or pass its .net to load_model"
        )
    if isinstance(name, str) and name in BUILTIN_MODELS:
        return _builtin(name, weights, input_size, mean, std, resize, feature_layer, classes)
    if isinstance(name, nn.Module):
        net, label = name, type(name).__name__
        if weights is not None:
            load_state_dict_file(net, weights)
    elif isinstance(name, (str, os.PathLike)) and is_pretrained_folder(name):
        return _pretrained(name, weights, input_size, mean, std, resize, feature_layer, classes, output)
    elif isinstance(name, (str, os.PathLike)):
        net, label = set_eval(load_network(str(name), weights)), os.path.basename(str(name))
    else:
        raise DeepInsideError(
            "load_model takes a built-in model name, a model file, 'package.module:factory' "
            f"or a torch.nn.Module, got a {type(name).__name__}"
        )
    prep = _preprocessing(label, input_size, mean, std, resize)
    return _classifier(net, label, prep, classes, feature_layer, output)


def _classifier(
    net: nn.Module,
    label: str,
    prep: Preprocessing,
    classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None,
    feature_layer: str | nn.Module | None,
    output: OutputSelector,
) -> Classifier:
    num_outputs = _num_outputs(net, label, prep, output)
    names = class_index_of(classes)
    if names is None:
        names = with_default_classes(num_outputs)
    elif len(names) != num_outputs:
        raise DeepInsideError(
            f"{len(names)} class names given, but model {label!r} has {num_outputs} outputs"
        )
    return Classifier(net, prep, names, feature_layer, name=label, output=output)


def _pretrained(
    folder: str | os.PathLike[str],
    weights: object,
    input_size: int | Sequence[int] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    resize: ResizePolicy | None,
    feature_layer: str | nn.Module | None,
    classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None,
    output: OutputSelector,
) -> Classifier:
    """A Hugging Face classifier from its ``save_pretrained`` folder: its
    input size, normalisation and class names from the folder, each
    overridable."""
    if weights is not None:
        raise DeepInsideError(f"{folder}: a saved Hugging Face folder holds its own weights; drop --weights")
    found = load_pretrained(folder)
    prep = _preprocessing(
        found.label,
        input_size or found.input_size,
        mean or found.mean,
        std or found.std,
        resize,
    )
    return _classifier(found.net, found.label, prep, classes or found.classes, feature_layer, output)


def _builtin(
    name: str,
    weights: object,
    input_size: object,
    mean: object,
    std: object,
    resize: ResizePolicy | None,
    feature_layer: str | nn.Module | None,
    classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None,
) -> Classifier:
    if weights is not None or input_size is not None or mean is not None or std is not None:
        raise DeepInsideError(f"{name} is built in: it takes no weights, input size, mean or std")
    model = load_builtin(name)
    names = class_index_of(classes)
    if names is not None and len(names) != len(model.classes):
        raise DeepInsideError(f"{len(names)} class names given, but {name} has {len(model.classes)} classes")
    if feature_layer is not None or names is not None:
        model = Classifier(
            model.net,
            model.preprocessing,
            names or model.classes,
            feature_layer or model.feature_layer,
            name=name,
        )
    if resize is not None:
        model.preprocessing = dataclasses.replace(model.preprocessing, resize=resize)
    return model


def _preprocessing(
    label: str,
    input_size: int | Sequence[int] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    resize: ResizePolicy | None,
) -> Preprocessing:
    if input_size is None:
        raise DeepInsideError(f"model {label!r}: give its input size (--input-size, e.g. 224)")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2:
        raise DeepInsideError(f"input size must be one number or HEIGHT WIDTH, got {input_size}")
    if (mean is None) != (std is None) and len(mean or std or ()) != 3:
        raise DeepInsideError("give --mean and --std together for a model that is not RGB")
    return Preprocessing(
        input_size=(int(size[0]), int(size[1])),
        mean=tuple(mean) if mean is not None else Preprocessing.mean,
        std=tuple(std) if std is not None else Preprocessing.std,
        resize=resize or "stretch",
    )


def _num_outputs(net: nn.Module, label: str, prep: Preprocessing, output: OutputSelector) -> int:
    """The number of class scores ``net`` gives, checked on one blank input
    (in eval mode, so that no batch-norm statistics move)."""
    shape = (1, prep.channels, *prep.input_size)
    try:
        with torch.no_grad(), eval_mode(net):
            raw = net(torch.zeros(shape))
    except Exception as err:  # noqa: BLE001 - the user's network can raise anything
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeepInsideError(
            f"model {label!r} failed on a {'x'.join(map(str, shape))} input ({first}): "
            "check --input-size, and --mean/--std (one value per input channel)"
        ) from None
    out = select_output(raw, output)
    if out.dim() != 2:
        raise DeepInsideError(
            f"model {label!r} is not a classifier: its output has shape {tuple(out.shape)}, "
            "expected (batch, classes)"
        )
    return int(out.shape[1])


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
    "feature_layer_path",
    "layer_path",
    "load_state_dict_file",
    "read_class_file",
    "select_output",
    "user_layer_name",
]
