"""The uniform classifier protocol every method relies on."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from ..errors import DeepInsideError
from ..io.prefetch import read_photos
from .graph import eval_mode, forward_pass, scores_before_probabilities
from .labels import ClassIndex, imagenet_classes, read_class_file
from .layers import find_feature_layer, module_name
from .outputs import OutputSelector, select_output
from .preprocessing import Placement, Preprocessing

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One class's score for one image."""

    class_index: int
    wnid: str
    label: str
    logit: float
    probability: float

    def as_dict(self) -> dict[str, object]:
        return {
            "class_index": self.class_index,
            "wnid": self.wnid,
            "label": self.label,
            "logit": self.logit,
            "probability": self.probability,
        }


class Classifier(nn.Module):
    """An image classifier that knows its input convention, its classes and
    where its last convolutional features are.

    ``forward`` maps a preprocessed batch ``(B, channels, H, W)`` to
    unnormalised class scores (logits) ``(B, C)``, taken from whatever the
    network returns (a tensor, ``.logits``, a dict or a tuple: see
    ``output``). A network whose last step is a softmax or a sigmoid is
    wrapped without it (with a warning): the paper's S_c is the score before it.

    Args:
        net: the network.
        preprocessing: how photos become its input.
        classes: its class names in output order: a :class:`ClassIndex`, a
            list of strings (one per class, ``"tabby, tabby cat"`` for several
            names), a class file's path (see :func:`read_class_file`), or None
            (none declared; ``load_model`` gives a user's model numbered
            classes, or ImageNet's for 1000 outputs).
        feature_layer: the submodule of ``net`` (its name in
            ``net.named_modules()``, or the module) whose output is the last
            convolutional feature map ``(B, K, h, w)`` (for Grad-CAM), or None
            to find it when first needed (:meth:`find_feature_layer`).
        name: a short name for reports.
        output: where the scores are in the network's output (see
            :func:`~deepinside.models.outputs.select_output`): None for a tensor,
            ``.logits`` or the first tensor; a key, a position or a callable.
    """

    def __init__(
        self,
        net: nn.Module,
        preprocessing: Preprocessing,
        classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None = None,
        feature_layer: str | nn.Module | None = None,
        name: str = "custom",
        output: OutputSelector = None,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise DeepInsideError(
                f"{name}: the network must be a torch.nn.Module, got a {type(net).__name__}"
            )
        self.net = scores_before_probabilities(net, f"{name}: the network")
        # The wrapper reports its network's mode (a loaded model is in eval mode).
        self.training = net.training
        self.preprocessing = preprocessing
        self._classes = class_index_of(classes)
        self.feature_layer = None if feature_layer is None else module_name(net, feature_layer)
        #: Whether :attr:`feature_layer` was found by a probe rather than declared.
        self.feature_layer_found = False
        self.name = name
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return select_output(self.net(x), self.output)

    def find_feature_layer(self) -> str:
        """The feature layer's name in the network: the declared one, or else
        the last spatial feature map the scores depend on, found by one pass
        of a blank input (:func:`~deepinside.models.layers.find_feature_layer`)
        and kept in :attr:`feature_layer`."""
        if self.feature_layer is None:
            device = next(self.parameters(), torch.empty(0)).device
            blank = torch.zeros(1, self.preprocessing.channels, *self.preprocessing.input_size, device=device)
            found = find_feature_layer(self, blank, skip=frozenset({"net"}))
            self.feature_layer = found.removeprefix("net.")
            self.feature_layer_found = True
            _LOG.info(
                "%s: feature layer %s (the last spatial feature map the scores depend on; "
                "--feature-layer NAME or layer= chooses another)",
                self.name,
                self.feature_layer,
            )
        return self.feature_layer

    @property
    def classes(self) -> ClassIndex:
        """The class names; an error where none were declared."""
        if self._classes is None:
            raise DeepInsideError(f"{self.name}: no class names declared; pass classes=")
        return self._classes

    @property
    def declared_classes(self) -> ClassIndex | None:
        """The class names, or None where none were declared (for callers that
        fall back to numbers instead of failing)."""
        return self._classes

    @torch.no_grad()
    def scores(self, inputs: torch.Tensor) -> torch.Tensor:
        """Eval-mode class scores ``(B, C)`` for a preprocessed batch, without
        gradients; each module is put back in its own mode after (batch-norm
        statistics are not touched)."""
        with eval_mode(self), forward_pass():
            return self(inputs)

    def digest(self) -> str:
        """A short hex digest of what decides the model's scores: its weights
        and buffers (names, dtypes, shapes, values) and its input
        normalisation. Two models with the same digest score alike, whatever
        their file names; a resumable run uses it to refuse mixing two."""
        h = hashlib.sha256(repr((self.preprocessing.mean, self.preprocessing.std)).encode())
        for name, tensor in self.net.state_dict().items():
            h.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        return h.hexdigest()[:16]

    def prepare(
        self, photos: Sequence[Image.Image | str | os.PathLike[str]]
    ) -> tuple[torch.Tensor, list[Placement]]:
        """Photos (PIL images, or paths read with :func:`~deepinside.io.prefetch.read_photos`)
        to an input batch ``(B, 3, H, W)`` on the model's device, with each
        input's placement in its photo; an unreadable file raises
        :class:`~deepinside.errors.ImageError`."""
        prepared = [self.preprocessing(found.checked()) for found in read_photos(photos)]
        device = next(self.parameters(), torch.empty(0)).device
        batch = torch.stack([t for t, _ in prepared]).to(device)
        return batch, [p for _, p in prepared]

    def predictions(self, logits: torch.Tensor, k: int = 5) -> list[list[Prediction]]:
        """The top-``k`` predictions for each row of ``logits`` ``(B, C)``."""
        return self.predictions_of(logits, logits.topk(min(k, logits.shape[1]), dim=1).indices)

    def predictions_of(self, logits: torch.Tensor, classes: torch.Tensor) -> list[list[Prediction]]:
        """Each row's predictions for its ``classes`` ``(B, K)`` (logit and
        softmax probability), the one place a :class:`Prediction` is made."""
        logits, classes = logits.detach().float().cpu(), classes.cpu()
        probs = logits.softmax(dim=1)
        names = self._classes or ClassIndex.numbered(logits.shape[1])
        return [
            [
                Prediction(i, names[i].wnid, names[i].label, float(logits[b, i]), float(probs[b, i]))
                for i in classes[b].tolist()
            ]
            for b in range(logits.shape[0])
        ]


def layer_path(model: nn.Module, layer: str | nn.Module) -> str:
    """The path within ``model`` of a layer named as in the user's own
    network (for a :class:`Classifier`, the network it wraps), or given as
    the module itself."""
    if isinstance(model, Classifier):
        return "net." + module_name(model.net, layer)
    return module_name(model, layer)


def user_layer_name(model: nn.Module, path: str) -> str:
    """A path within ``model`` as the user names it (see :func:`layer_path`)."""
    return path.removeprefix("net.") if isinstance(model, Classifier) else path


def feature_layer_path(model: nn.Module, layer: str | nn.Module | None, example: torch.Tensor) -> str:
    """The path within ``model`` of the layer a CAM method reads: ``layer``
    when given, else the model's declared or found feature layer (found by a
    probe on one input like ``example`` for a plain module)."""
    if layer is not None:
        return layer_path(model, layer)
    if isinstance(model, Classifier):
        return "net." + model.find_feature_layer()
    return find_feature_layer(model, example)


def class_index_of(classes: ClassIndex | Sequence[str] | str | os.PathLike[str] | None) -> ClassIndex | None:
    """Class names as a :class:`ClassIndex`, from any form ``Classifier`` takes."""
    if classes is None or isinstance(classes, ClassIndex):
        return classes
    if isinstance(classes, (str, os.PathLike)):
        return read_class_file(classes)
    if isinstance(classes, Sequence):
        return ClassIndex.from_names(classes)
    raise DeepInsideError(
        f"classes are a list of names, a class file or a ClassIndex, got a {type(classes).__name__}"
    )


def with_default_classes(num_outputs: int) -> ClassIndex:
    """ImageNet's classes for a 1000-way classifier, numbered classes otherwise."""
    return imagenet_classes() if num_outputs == 1000 else ClassIndex.numbered(num_outputs)
