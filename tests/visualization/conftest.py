"""Small models and recipes the class-model tests share."""

from __future__ import annotations

import argparse
import dataclasses

import torch
from torch import nn

import deepinside
from deepinside.cli import classmodel_cmd
from deepinside.visualization import Preset, presets

HALF = deepinside.Preprocessing(input_size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def linear_model(classes: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, classes))


def conv_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 4),
    )


def tiny_default(steps: int = 6) -> Preset:
    return dataclasses.replace(presets.default(), steps=steps, octaves=((0.5, 0.5), (1.0, 0.5)))


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deepinside")
    classmodel_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def _moves(shifts: torch.Tensor, source: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Affine matrices (resample's convention) that show a ``size`` window of
    a ``source`` image at its own scale, output pixel p at p + shift."""
    (h, w), (hs, ws) = size, source
    m = torch.eye(3, dtype=torch.float64).repeat(len(shifts), 1, 1)
    m[:, 0, 0], m[:, 1, 1] = w / ws, h / hs
    m[:, 0, 2] = 2 * shifts[:, 0] / ws - 1 + w / ws
    m[:, 1, 2] = 2 * shifts[:, 1] / hs - 1 + h / hs
    return m
