"""``deepinside demo``: the paper's figures on photos bundled with scikit-image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import figures
from ..io.files import write_png
from ..models import load_model
from ._common import add_device_arg

PARTS = ("saliency", "localization", "classmodel")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the paper's methods on bundled photos and draw its figures",
        description="Draw the paper's figures with the built-in model on photos that come with "
        "scikit-image (no download): saliency_figure.png (and each photo's maps in saliency/), "
        "localization_figure.png and classmodel_figure.png, in --out.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-demo"), help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="figures to draw (default: all)"
    )
    add_device_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_model().to(args.device)
    photos = figures.bundled_photos() if {"saliency", "localization"} & set(args.parts) else []
    if "saliency" in args.parts:
        figure = figures.saliency_figure(model, photos, args.out / "saliency")
        path = write_png(args.out / "saliency_figure.png", figure)
        print(f"wrote {path} and per-photo maps in {args.out / 'saliency'}", file=sys.stderr)
    if "localization" in args.parts:
        path = write_png(args.out / "localization_figure.png", figures.localization_figure(model, photos))
        print(f"wrote {path}", file=sys.stderr)
    if "classmodel" in args.parts:
        path = write_png(args.out / "classmodel_figure.png", figures.classmodel_figure(model))
        print(f"wrote {path}", file=sys.stderr)
    return 0
