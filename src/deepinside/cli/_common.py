"""Options shared by commands: which model, and how to report per-file problems."""

from __future__ import annotations

import argparse
import sys
import warnings

import torch

from ..attribution import METHODS, Method
from ..attribution.methods import method_from_name
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


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def device(text: str) -> torch.device:
    """An argparse type: a device this machine has (cpu, cuda, cuda:N, mps)."""
    try:
        found = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda, cuda:N or mps") from None
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(
                f"{text}: this machine's torch ({torch.__version__}) sees no CUDA GPU; "
                "leave out --device to use the CPU"
            )
        if (found.index or 0) >= count:
            raise argparse.ArgumentTypeError(
                f"{text}: there is no such GPU (this machine has {count}: cuda:0 to cuda:{count - 1})"
            )
    elif found.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(
                f"{text}: Apple's GPU (mps) is not available here; leave out --device to use the CPU"
            )
    elif found.type != "cpu":
        raise argparse.ArgumentTypeError(
            f"{text}: unsupported device type {found.type!r}: use cpu, cuda, cuda:N or mps"
        )
    return found


def add_device_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--device",
        type=device,
        default=torch.device("cpu"),
        help="where the model runs: cpu, cuda, cuda:N or mps (default: cpu)",
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="built-in name (efficientnet_lite0, efficientnet_lite1, efficientnet_lite2), "
        "a TorchScript file, a torch.export .pt2 file, or package.module:factory (default: %(default)s)",
    )
    add_device_arg(group)
    group.add_argument(
        "--weights", help="a state dict file to load into the model (loaded with weights_only)"
    )
    group.add_argument(
        "--input-size", type=int, nargs="+", metavar="PX", help="input size of your model: N or H W"
    )
    group.add_argument(
        "--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="input mean, 0..1 pixel scale"
    )
    group.add_argument(
        "--std", type=float, nargs=3, metavar=("R", "G", "B"), help="input std, 0..1 pixel scale"
    )
    group.add_argument(
        "--feature-layer",
        metavar="NAME",
        help="your model's last convolutional layer, for Grad-CAM (a submodule name, e.g. features)",
    )
    group.add_argument(
        "--resize",
        choices=["stretch", "center-crop"],
        default=None,
        help="how a photo becomes the input (default: stretch, so maps cover the whole photo)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
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
            feature_layer=args.feature_layer,
        )
    for w in caught:
        print(f"deepinside: warning: {w.message}", file=sys.stderr)
    return model.to(args.device)


def add_method_args(parser: argparse.ArgumentParser, many: bool = False) -> None:
    group = parser.add_argument_group("attribution method")
    names = list(METHODS)
    if many:
        group.add_argument(
            "--methods",
            nargs="+",
            choices=names,
            default=names,
            metavar="METHOD",
            help=f"methods to compare (default: all of {', '.join(names)})",
        )
    else:
        group.add_argument(
            "--method",
            choices=names,
            default="gradient",
            metavar="METHOD",
            help=f"one of {', '.join(names)} (default: gradient, the paper's)",
        )
    group.add_argument(
        "--reduce",
        choices=["max-abs", "sum-abs", "l2", "sum"],
        default="max-abs",
        help="channel reduction (default: max-abs, the paper's)",
    )
    group.add_argument(
        "--samples", type=positive_int, default=50, help="smoothgrad: noisy copies (default 50)"
    )
    group.add_argument(
        "--noise", type=float, default=0.15, help="smoothgrad: noise std as a fraction of the input range"
    )
    group.add_argument(
        "--variant", choices=["mean", "squared", "vargrad"], default="mean", help="smoothgrad variant"
    )
    group.add_argument(
        "--ig-steps", type=positive_int, default=50, help="integrated gradients: steps (default 50)"
    )
    group.add_argument(
        "--baseline",
        type=float,
        default=0.0,
        help="integrated gradients: constant baseline in the model's input space "
        "(default 0: the mean colour)",
    )
    group.add_argument("--layer", help="grad-cam: feature layer name (default: the model's declared one)")


def methods_from_args(args: argparse.Namespace) -> list[Method]:
    """Method instances for the names given, each with its options."""
    names = getattr(args, "methods", None) or [args.method]
    options: dict[str, dict[str, object]] = {
        "smoothgrad": {"samples": args.samples, "noise": args.noise, "variant": args.variant},
        "integrated-gradients": {"steps": args.ig_steps, "baseline": args.baseline},
        "grad-cam": {"layer": args.layer},
        "guided-grad-cam": {"layer": args.layer},
    }
    return [method_from_name(n, **options.get(n, {})) for n in dict.fromkeys(names)]
