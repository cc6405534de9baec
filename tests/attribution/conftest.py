"""Tiny hand-built models the attribution tests share."""

import torch
from torch import nn


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)
    ).double()


def _x(batch: int = 2, size: int = 7) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def cnn_or_vit(method: str, model, batch, request):  # type: ignore[no-untyped-def]
    """The model a method is tested on, its inputs and a class per input:
    the built-in CNN, or for a method that needs attention a small
    random-initialised Hugging Face ViT (loaded as users load it)."""
    from deepinside.attribution import METHODS

    if "attention" not in METHODS[method].needs:
        return model, batch, [285, 967]
    pytest = __import__("pytest")
    pytest.importorskip("transformers")
    import deepinside
    from tests.models import zoo

    build, size, _ = zoo.hugging_face()["HF ViT"]
    vit = deepinside.load_model(build(), input_size=size)
    return vit, torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2)), [1, 3]
