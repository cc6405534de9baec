from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data

import deepinside


@pytest.fixture(scope="session")
def model() -> deepinside.Classifier:
    return deepinside.load_model()


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    """Real photos shipped inside scikit-image."""
    return {
        n: Image.fromarray(getattr(data, n)()).convert("RGB")
        for n in ("chelsea", "coffee", "astronaut", "rocket")
    }


@pytest.fixture(scope="session")
def batch(model: deepinside.Classifier, photos: dict[str, Image.Image]) -> torch.Tensor:
    x, _ = model.prepare([photos["chelsea"], photos["coffee"]])
    return x


def agreement(ours: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """(max |diff| / max |ref|, fraction of pixels within 1% of the max, correlation)."""
    diff = (ours.double() - ref.double()).abs() / ref.double().abs().max()
    corr = torch.corrcoef(torch.stack([ours.double().flatten(), ref.double().flatten()]))[0, 1]
    return float(diff.max()), float((diff <= 0.01).double().mean()), float(corr)
