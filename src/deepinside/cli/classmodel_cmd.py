"""``deepinside classmodel TARGET...``: class model visualisation (paper section 2)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

from ..errors import DeepInsideError
from ..visualization import EarlyStop, presets, visualize_class
from ..visualization.objectives import OBJECTIVES
from ..visualization.output import save
from ._common import add_model_args, model_from_args, positive_int


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "classmodel",
        help="the image a class's score likes best (class model visualisation, paper section 2)",
        description="For each class: a PNG, its objective log (S_c and P_c per step, .log.json and "
        ".log.csv); for all: contact_sheet.png and summary.json. Classes are optimised together "
        "as one batch, --batch-size at a time.",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="classes: index, WordNet id or name")
    p.add_argument("--all", action="store_true", help="every class of the model (1000 for ImageNet)")
    p.add_argument(
        "--preset", choices=sorted(presets.PRESETS), default="default",
        help="default: recognisable pictures; paper: the paper's recipe (default: %(default)s)",
    )
    p.add_argument(
        "--objective", choices=list(OBJECTIVES), default="logit",
        help="the class term: logit (S_c, the paper's) or probability (P_c) (default: %(default)s)",
    )
    p.add_argument("--steps", type=positive_int, help="updates per class, at most (default: the preset's)")
    p.add_argument(
        "--early-stop", type=_stop_probability, metavar="P|off",
        help="stop a class once the model gives its picture, shrunk to half and enlarged back, a "
        "probability of at least P; checked at step 96 and every 32 after (default: the preset's: "
        "0.95 for default, off for paper; off: every class runs all --steps)",
    )
    p.add_argument("--size", type=int, metavar="PX", help="image size (default: the model's input size)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same pictures (default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="classes optimised at once (default 8)")
    p.add_argument("--columns", type=positive_int, help="columns of the contact sheet (default: about sqrt(K))")
    p.add_argument("--out", type=Path, default=Path("deepinside-classmodel"), help="output folder (default %(default)s)")
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.all and args.targets:
        raise DeepInsideError("give classes or --all, not both")
    if not args.all and not args.targets:
        raise DeepInsideError("name at least one class (index, WordNet id or name), or use --all")
    model = model_from_args(args)
    preset = presets.get(args.preset)
    early_stop = _early_stop(args.early_stop, preset.early_stop)
    targets = list(range(len(model.classes))) if args.all else model.classes.resolve_many(args.targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # failures are reported below, one line each
        result = visualize_class(
            model, targets, preset=preset, objective=args.objective, steps=args.steps,
            early_stop=early_stop or False,  # None would mean the preset's
            size=args.size, seed=args.seed, batch_size=args.batch_size, progress=None,
        )
    for message in result.failures.values():
        print(f"deepinside: warning: {message}", file=sys.stderr)
    settings = {
        "model": model.name, "preset": args.preset, "steps": args.steps or preset.steps,
        "early_stop": dataclasses.asdict(early_stop) if early_stop else None,
        "size": list(result.images.shape[-2:]), "seed": args.seed, "batch_size": args.batch_size,
    }
    save(result, args.out, settings, columns=args.columns)
    done = len(targets) - len(result.failures)
    steps = f" ({float(result.log.steps_run.float().mean()):.0f} steps a class on average)" if early_stop else ""
    print(
        f"{done} of {len(targets)} classes rendered in {result.seconds:.0f} s{steps}; "
        f"pictures, logs and contact_sheet.png in {args.out}",
        file=sys.stderr,
    )
    return 1 if result.failures else 0


def _stop_probability(text: str) -> float | bool:
    """An argparse type: a probability in (0, 1], or ``off`` (False)."""
    if text.lower() == "off":
        return False
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a probability nor 'off'") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability in (0, 1] or 'off', got {text}")
    return value


def _early_stop(probability: float | bool | None, preset_rule: EarlyStop | None) -> EarlyStop | None:
    """The rule to run: the preset's when not given, none for ``off``, else
    the preset's (or the standard) rule at that probability."""
    if probability is None:
        return preset_rule
    if probability is False:
        return None
    return dataclasses.replace(preset_rule or EarlyStop(), probability=float(probability))
