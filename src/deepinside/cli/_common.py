"""Options shared by commands: which model, and how to report per-file problems."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..io.photos import DEFAULT_MAX_PIXELS
from ..models import DEFAULT_MODEL, Classifier, load_model


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="built-in name (efficientnet_lite0, efficientnet_lite1, efficientnet_lite2), "
        "a TorchScript file, a torch.export .pt2 file, or package.module:factory (default: %(default)s)",
    )
    group.add_argument("--weights", help="a state dict file to load into the model (loaded with weights_only)")
    group.add_argument("--input-size", type=int, nargs="+", metavar="PX", help="input size of your model: N or H W")
    group.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="input mean, 0..1 pixel scale")
    group.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="input std, 0..1 pixel scale")
    group.add_argument(
        "--resize", choices=["stretch", "center-crop"], default=None,
        help="how a photo becomes the input (default: stretch, so maps cover the whole photo)",
    )
    parser.add_argument(
        "--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
        help="refuse larger images (decompression-bomb guard; default %(default)s)",
    )


def model_from_args(args: argparse.Namespace) -> Classifier:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        size = args.input_size
        model = load_model(
            args.model,
            weights=args.weights,
            input_size=(size[0] if len(size) == 1 else size) if size else None,
            mean=args.mean,
            std=args.std,
            resize=args.resize,
        )
    for w in caught:
        print(f"deepinside: warning: {w.message}", file=sys.stderr)
    return model
