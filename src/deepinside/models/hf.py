"""Hugging Face image classifiers from a folder written by ``save_pretrained``
(``pip install 'deepinside[hf]'``): the weights, the class names
(``id2label``) and, where the folder has an image processor's settings, the
input size and normalisation. Nothing is fetched: the folder is all there is."""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import DeepInsideError

# Without a processor file: ImageNet's statistics for RGB, mid-grey otherwise.
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_DEFAULT_SIZE = 224


@dataclass(frozen=True)
class Pretrained:
    """A loaded folder: the network and what the folder says about its input."""

    net: nn.Module
    label: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str] | None


def is_pretrained_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a model's ``config.json``."""
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def load_pretrained(folder: str | os.PathLike[str]) -> Pretrained:
    """The image classifier saved in ``folder``, in eval mode, offline."""
    try:
        import transformers
    except ImportError:
        raise DeepInsideError(
            f"{folder}: a Hugging Face model folder needs transformers: pip install 'deepinside[hf]'"
        ) from None
    path = Path(folder)
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        net = transformers.AutoModelForImageClassification.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeepInsideError(f"{folder}: not a Hugging Face image classifier ({first})") from None
    _any_input_size(net)
    channels = int(getattr(config, "num_channels", 3))
    processor = _processor_settings(path)
    mean, std = _normalisation(processor, channels)
    return Pretrained(
        net.eval(),
        path.resolve().name,
        _input_size(processor, config),
        mean,
        std,
        _class_names(config),
    )


def _any_input_size(net: nn.Module) -> None:
    """Let a ViT-style model take inputs of any size, as localisation's 2x view
    and class models' transforms need: its position embeddings interpolated
    (Hugging Face's ``interpolate_pos_encoding``; at the native size they are
    used as they are). Done on the model loaded here, never on a user's own."""
    if "interpolate_pos_encoding" in inspect.signature(net.forward).parameters:
        net.forward = functools.partial(net.forward, interpolate_pos_encoding=True)


def _processor_settings(folder: Path) -> dict[str, object]:
    file = folder / "preprocessor_config.json"
    if not file.is_file():
        return {}
    try:
        settings = json.loads(file.read_text())
    except (OSError, ValueError):
        raise DeepInsideError(f"{file}: not readable as JSON") from None
    return settings if isinstance(settings, dict) else {}


def _input_size(processor: dict[str, object], config: object) -> tuple[int, int]:
    """The processor's crop or size, else the config's image size, else 224."""
    for key in ("crop_size", "size"):
        size = processor.get(key)
        if isinstance(size, int):
            return size, size
        if isinstance(size, dict):
            if "height" in size and "width" in size:
                return int(size["height"]), int(size["width"])
            if "shortest_edge" in size:
                return int(size["shortest_edge"]), int(size["shortest_edge"])
    size = getattr(config, "image_size", None)
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    return _DEFAULT_SIZE, _DEFAULT_SIZE


def _normalisation(
    processor: dict[str, object], channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = processor.get("image_mean"), processor.get("image_std")
    if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == channels:
        return tuple(map(float, mean)), tuple(map(float, std))
    if channels == 3:
        return _IMAGENET_MEAN, _IMAGENET_STD
    return (0.5,) * channels, (0.5,) * channels


def _class_names(config: object) -> list[str] | None:
    """``id2label`` in index order, unless it holds only the placeholder names
    ``LABEL_0``, ``LABEL_1``, ... (then the default names apply)."""
    labels = getattr(config, "id2label", None) or {}
    names = [str(labels[i]) for i in sorted(labels, key=int)]
    if not names or all(re.fullmatch(r"LABEL_\d+", n) for n in names):
        return None
    return names
