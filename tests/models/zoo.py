"""Small models of the kinds users bring, each with a case the gradient view
once got wrong or refused (the issue "Every model a user brings"), and
random-initialised Hugging Face classifiers built from their configs.
Shared by the tests and ``benchmarks/model_matrix.py``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class InplaceVgg(nn.Module):
    """torchvision's VGG pattern: in-place ReLUs, max pooling, a ``.view`` flatten."""

    def __init__(self, channels: int = 3, classes: int = 5, size: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(8 * (size // 2) ** 2, 16), nn.ReLU(inplace=True), nn.Linear(16, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class OptionalArgument(nn.Module):
    """A forward with an optional second input, left at its default."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if mask is not None:
            y = y * mask
        return self.fc(y.mean((2, 3))) * scale


class DictOutput(nn.Module):
    """Returns ``{"features": ..., "logits": ...}``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(x)
        return {"features": features, "logits": self.head(features.mean((2, 3)))}


class TupleOutput(DictOutput):
    """Returns ``(logits, features)``, as many detection-style heads do."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return out["logits"], out["features"]


class MultiLabel(nn.Module):
    """A multi-label head: a sigmoid per class."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(x).mean((2, 3))))


def grey() -> nn.Module:
    """A one-channel (greyscale) classifier, of any input size."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )


def small_input() -> nn.Module:
    """A classifier for 96 px inputs whose head is fixed to that size."""
    return InplaceVgg(classes=4, size=96)


class Segmenter(nn.Module):
    """A tiny fully convolutional segmentation net: ``(B, 3, H, W) -> (B, 3, H, W)``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


#: The hand-written cases: name -> (builder, input size, channels).
HAND_WRITTEN: dict[str, tuple[Callable[[], nn.Module], int, int]] = {
    "in-place ReLU, .view (VGG-like)": (InplaceVgg, 32, 3),
    "optional forward argument": (OptionalArgument, 32, 3),
    "dict output": (DictOutput, 32, 3),
    "tuple output": (TupleOutput, 32, 3),
    "multi-label (sigmoid)": (MultiLabel, 32, 3),
    "1 channel": (grey, 32, 1),
    "96 px input": (small_input, 96, 3),
}


def _tiny(family: str, **fields: object) -> Callable[[], nn.Module]:
    """A builder of Hugging Face's ``{family}ForImageClassification`` from
    ``{family}Config(**fields)`` with 5 labels, seeded."""

    def build() -> nn.Module:
        import transformers

        torch.manual_seed(0)
        config = getattr(transformers, f"{family}Config")(num_labels=5, **fields)
        return getattr(transformers, f"{family}ForImageClassification")(config).eval()

    return build


def hugging_face() -> dict[str, tuple[Callable[[], nn.Module], int, int]]:
    """Random-initialised Hugging Face classifiers, small, by family; empty
    without transformers."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return {}
    convs = {"hidden_sizes": [8, 16], "depths": [1, 1], "embedding_size": 8}
    vit = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
    return {
        "HF ResNet": (_tiny("ResNet", **convs), 64, 3),
        "HF ConvNeXt": (_tiny("ConvNext", hidden_sizes=[8, 16], depths=[1, 1], num_stages=2), 64, 3),
        "HF RegNet": (_tiny("RegNet", **convs, groups_width=8), 64, 3),
        "HF MobileNetV2": (_tiny("MobileNetV2", depth_multiplier=0.35, image_size=64), 64, 3),
        "HF EfficientNet": (_tiny("EfficientNet", depth_coefficient=0.1, image_size=64), 64, 3),
        "HF ViT": (_tiny("ViT", **vit, image_size=32, patch_size=8), 32, 3),
        "HF DeiT": (_tiny("DeiT", **vit, image_size=32, patch_size=8), 32, 3),
        "HF Swin": (
            _tiny(
                "Swin",
                image_size=32,
                patch_size=4,
                embed_dim=8,
                depths=[1, 1],
                num_heads=[1, 2],
                window_size=4,
            ),
            32,
            3,
        ),
        "HF DINOv2": (_tiny("Dinov2", **vit, image_size=32, patch_size=8), 32, 3),
    }
