"""Options shared by commands: which model, which method, and how a wrong option is told."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import torch

from ..attribution import METHODS, Method
from ..attribution.methods import Option, flag_of, method_from_name, options_of, unmet_need
from ..errors import DeepInsideError
from ..io.photos import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from ..models import DEFAULT_MODEL, Classifier, load_model

#: Help for the photo arguments: which files a folder scan takes.
IMAGES_HELP = (
    "photos, or folders searched recursively for "
    + " ".join(sorted(IMAGE_SUFFIXES))
    + " files (any case); a file named here is tried whatever its suffix"
)


class Parser(argparse.ArgumentParser):
    """An argument parser that answers a wrong option with the one line that
    matters and where to read more, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"deepinside: error: {message}\nsee: {self.prog} --help\n")


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


def add_model_args(parser: argparse.ArgumentParser, photos: bool = True) -> None:
    """The model options; with ``photos``, also how photos become its input."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="built-in name (efficientnet_lite0, efficientnet_lite1, efficientnet_lite2), "
        "a TorchScript file, a torch.export .pt2 file, package.module:factory, or a Hugging Face "
        "save_pretrained folder (default: %(default)s)",
    )
    add_device_arg(group)
    group.add_argument(
        "--weights", help="a state dict file to load into the model (loaded with weights_only)"
    )
    group.add_argument(
        "--input-size", type=int, nargs="+", metavar="PX", help="input size of your model: N or H W"
    )
    group.add_argument(
        "--mean",
        type=float,
        nargs="+",
        metavar="V",
        help="input mean per channel, 0..1 pixel scale (R G B; one value for a greyscale model)",
    )
    group.add_argument(
        "--std", type=float, nargs="+", metavar="V", help="input std per channel, 0..1 pixel scale"
    )
    group.add_argument(
        "--feature-layer",
        metavar="NAME",
        help="your model's last convolutional layer, for Grad-CAM and localisation, as its "
        "named_modules() names it (default: found, the last spatial feature map the scores use)",
    )
    group.add_argument(
        "--classes",
        metavar="FILE",
        help="your model's class names, one per line in output order "
        "(a name, 'tabby, tabby cat', or ImageNet's 'n02123045 tabby, tabby cat')",
    )
    if photos:
        _add_photo_args(parser, group)


def _add_photo_args(parser: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> None:
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
            resize=getattr(args, "resize", None),
            feature_layer=args.feature_layer,
            classes=args.classes,
        )
    for w in caught:
        print(f"deepinside: warning: {w.message}", file=sys.stderr)
    return model.to(args.device)


def add_deterministic_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="the same maps bit for bit on every run (on a GPU: without cuDNN, several times slower)",
    )


def add_method_args(parser: argparse.ArgumentParser, default: list[str] | None = None) -> None:
    """The method options; ``--methods`` (or ``--method``, the same option:
    several names, or repeated) defaults to ``default``, or with None to
    every method that applies to the model."""
    group = parser.add_argument_group("attribution method")
    names = list(METHODS)
    shown = ", ".join(default) if default else "every one that applies to the model"
    group.add_argument(
        "--methods",
        "--method",
        dest="methods",
        nargs="+",
        action="extend",
        choices=names,
        default=None,
        metavar="METHOD",
        help=f"one or more of {', '.join(names)} (default: {shown})",
    )
    parser.set_defaults(default_methods=default)
    add_deterministic_arg(group)
    group.add_argument(
        "--reduce",
        choices=["max-abs", "sum-abs", "l2", "sum"],
        default="max-abs",
        help="channel reduction (default: max-abs, the paper's)",
    )
    # These default to None so that an option given to a method that does not
    # take it can be refused (the methods' own defaults apply otherwise).
    for dest, (flag, _field, takers, declared) in METHOD_OPTIONS.items():
        own_default = _default_of(takers[0], _field)
        shown = "" if own_default is None else f" (default {own_default})"
        group.add_argument(
            flag,
            dest=dest,
            type=positive_int if declared.kind is int and declared.low == 1 else declared.kind,
            choices=declared.choices,
            help=f"{' and '.join(takers)}: {declared.help}{shown}",
        )


def _method_options() -> dict[str, tuple[str, str, tuple[str, ...], Option]]:
    """Every method option that has a flag: dest -> (flag, the method field it
    sets, the methods that take it, its declaration), from the methods'
    own declarations."""
    found: dict[str, tuple[str, str, tuple[str, ...], Option]] = {}
    for name, cls in METHODS.items():
        for field, (_, declared) in options_of(cls).items():
            flag = flag_of(field, declared)
            if flag is None:
                continue
            dest = flag.removeprefix("--").replace("-", "_")
            takers = found[dest][2] + (name,) if dest in found else (name,)
            found[dest] = (flag, field, takers, declared)
    return found


def _default_of(method: str, field: str) -> object:
    return options_of(METHODS[method])[field][0]


#: Method options: the option, the method field it sets, the methods that take it, its declaration.
METHOD_OPTIONS = _method_options()


def methods_from_args(args: argparse.Namespace, model: Classifier | None = None) -> list[Method]:
    """Method instances for the names given, each with the options given for
    it; an option that none of the methods takes is an error naming those that do.
    With ``--methods`` left out: the command's default, else every method (with
    ``model``, every one that applies to it)."""
    if args.methods:
        names = list(dict.fromkeys(args.methods))
    elif args.default_methods:
        names = list(args.default_methods)
    else:
        names = [n for n, m in METHODS.items() if model is None or unmet_need(m, model) is None]
    options: dict[str, dict[str, object]] = {n: {} for n in names}
    for dest, (flag, field, takers, _) in METHOD_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if not set(takers) & set(names):
            raise DeepInsideError(f"{flag} applies to {' and '.join(takers)} only, not to {', '.join(names)}")
        for n in set(takers) & set(names):
            options[n][field] = value
    return [method_from_name(n, **options[n]) for n in names]


def report_written(done: int, paths: Sequence[Path], verb: str, out: object) -> None:
    """The closing line of a command that writes per photo: how many of the
    photos found were done, the paths given that do not exist, and where
    the results are, or that nothing was written."""
    missing = sum(not p.exists() for p in paths)
    where = f"results in {out}" if done else "nothing written"
    gone = f"; {missing} path{'s' if missing > 1 else ''} not found" if missing else ""
    print(f"{done} of {len(paths) - missing} images {verb}{gone}; {where}", file=sys.stderr)
