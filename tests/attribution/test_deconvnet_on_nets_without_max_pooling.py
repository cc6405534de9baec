"""DeconvNet's map ignores the photo on a network without max pooling: say so."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import deepinside
from deepinside import Preprocessing
from deepinside.cli import main


def _tiny(*middle: nn.Module) -> deepinside.Classifier:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), *middle, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    return deepinside.Classifier(net.eval(), Preprocessing(input_size=(16, 16)))


def test_the_warning_comes_without_max_pooling_only():
    x = torch.randn(2, 3, 16, 16)
    with pytest.warns(UserWarning, match="deconvnet on a network without max pooling"):
        plain = deepinside.saliency(_tiny(), x, 1, "deconvnet")
    # Without max pooling the map is the same for every image: the warning is true.
    torch.testing.assert_close(plain[0], plain[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pooled = deepinside.saliency(_tiny(nn.MaxPool2d(2)), x, 1, "deconvnet")
        deepinside.saliency(_tiny(), x, 1, "guided-backprop")
    assert not torch.allclose(pooled[0], pooled[1])


def test_the_command_line_says_it_once(tmp_path, photos, capsys):
    for name in ("chelsea", "coffee"):
        photos[name].resize((64, 64)).save(tmp_path / f"{name}.png")
    argv = ["saliency", str(tmp_path / "chelsea.png"), str(tmp_path / "coffee.png"), "--method", "deconvnet"]
    assert main([*argv, "--batch-size", "1", "--out", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith(
        "deepinside: warning: deconvnet on a network without max pooling"
    )
