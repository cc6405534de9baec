"""``deepinside classmodel TARGET...``: class model visualisation (paper section 2)."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from tqdm import tqdm

from ..errors import DeepInsideError
from ..models import Classifier
from ..visualization import presets
from ..visualization.batch_size import default_batch_size
from ..visualization.job import ClassModelJob, Record, not_converged, run_job
from ..visualization.objectives import OBJECTIVES
from ._common import add_model_args, model_from_args, non_negative_int, positive_int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "classmodel",
        help="the image a class's score likes best (class model visualisation, paper section 2)",
        description="For each class: a PNG, its objective log (S_c and P_c per step, .log.json and "
        ".log.csv); for all: contact_sheet.png and summary.json. Classes are optimised together "
        "as one batch, --batch-size at a time, and each batch's files are written when it is done: "
        "run the same command again after a crash or Ctrl-C and it goes on where it stopped.",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="classes: index, WordNet id or name")
    p.add_argument("--all", action="store_true", help="every class of the model (1000 for ImageNet)")
    p.add_argument(
        "--preset",
        choices=sorted(presets.PRESETS),
        default="default",
        help="default: recognisable pictures; convincing: pictures a second network is surer of, at "
        "about twice the time (docs/benchmarks.md); paper: the paper's recipe (default: %(default)s)",
    )
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        default="logit",
        help="the class term: logit (S_c, the paper's), probability (P_c) or log-probability (log P_c) "
        "(default: %(default)s)",
    )
    p.add_argument("--steps", type=positive_int, help="updates per class, at most (default: the preset's)")
    p.add_argument(
        "--early-stop",
        type=_stop_probability,
        metavar="P|off",
        help="stop a class once the model gives its picture, shrunk (to half; to 0.35 for convincing) "
        "and enlarged back, and as it is, a probability of at least P; checked at step 96 (128 for "
        "convincing) and every 32 after (default: the preset's: 0.95 for default, 0.99 for convincing, "
        "off for paper; off: every class runs all --steps)",
    )
    p.add_argument(
        "--size", type=positive_int, metavar="PX", help="image size (default: the model's input size)"
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same pictures (default %(default)s)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help="classes optimised at once (default: 8 on the CPU; on a GPU as many as half its memory holds, "
        "up to 250)",
    )
    p.add_argument(
        "--retries",
        type=non_negative_int,
        default=2,
        help="render a class again from seed + 1, seed + 2, ... this many times at most while its picture "
        "is not its model's top-1 with the early-stop probability (default %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        help="processes rendering batches side by side, sharing the torch threads (default on the CPU: "
        "one per thread when there is more than one batch; on a GPU: one)",
    )
    p.add_argument(
        "--columns", type=positive_int, help="columns of the contact sheet (default: about sqrt(K))"
    )
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-classmodel"), help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the pictures, logs and summary of a run with other settings in --out first",
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: spread the batches over a Ray cluster's actors (see docs/batch.md)",
    )
    p.add_argument("--address", help="ray: the cluster to join (default: start Ray on this machine)")
    p.add_argument("--actors", type=positive_int, default=1, help="ray: model actors (default 1)")
    add_model_args(p, photos=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.all and args.targets:
        raise DeepInsideError("give classes or --all, not both")
    if not args.all and not args.targets:
        raise DeepInsideError("name at least one class (index, WordNet id or name), or use --all")
    if args.engine == "ray":
        from ..batch.ray_engine import require_ray

        require_ray()
    model = model_from_args(args)
    targets = list(range(len(model.classes))) if args.all else model.classes.resolve_many(args.targets)
    job = ClassModelJob.for_model(
        model,
        targets,
        args.out,
        preset=args.preset,
        objective=args.objective,
        steps=args.steps,
        early_stop=args.early_stop,
        size=args.size,
        seed=args.seed,
        batch_size=args.batch_size or _default_batch_size(model, args),
        retries=args.retries,
    )
    batches = job.start(overwrite=args.overwrite)
    report = _Report(len(job.targets), len(job.targets) - sum(map(len, batches)), bar=len(batches) > 1)
    with report:
        if args.engine == "ray":
            from ..batch.classmodels import render_on_ray

            rendered = render_on_ray(
                job, model, batches, address=args.address, actors=args.actors, on_batch=report
            )
        else:
            rendered = run_job(
                job,
                model,
                batches=batches,
                workers=args.workers or _default_workers(args.device),
                model_factory=functools.partial(model_from_args, args),
                on_batch=report,
                progress=None,
            )
    records = job.finish(args.columns, seconds=round(report.seconds(), 1), rendered_now=rendered)
    stopped = [r for r in records if r["stopped"]]
    for record in stopped:
        print(f"deepinside: warning: {record['stopped']}", file=sys.stderr)
    failed = not_converged(records)
    mean_steps = _mean(records, "steps_run")
    earlier = f", {len(records) - rendered} were done before" if rendered < len(records) else ""
    print(
        f"{len(records) - len(stopped)} of {len(records)} classes rendered "
        f"({rendered} now in {report.seconds():.0f} s{earlier}; {mean_steps:.0f} steps a class on average); "
        f"pictures, logs and contact_sheet.png in {args.out}",
        file=sys.stderr,
    )
    if job.fast_preview:
        assert job.early_stop is not None
        print(
            f"deepinside: {job.steps} steps is a fast preview: the {job.preset} preset first judges a "
            f"picture at step {job.early_stop.first}, so none is called converged (summary.json: "
            "fast_preview)",
            file=sys.stderr,
        )
    if failed:
        print(
            f"deepinside: {len(failed)} of {len(records)} classes did not converge (picture not the model's "
            f"top-1 with P_c >= {job.required_probability:g} after {1 + args.retries} tries): "
            f"{', '.join(failed)}; they are listed in summary.json as not_converged: try more --steps "
            "or --retries",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _mean(records: Sequence[Record], key: str) -> float:
    """The mean over ``records`` of a number each holds (``steps_run``, ``final_probability``)."""
    # A record holds the numbers save_class wrote, read back from JSON.
    return sum(cast(float, r[key]) for r in records) / len(records)


class _Report:
    """Classes done and time left, after each batch: a bar on a terminal
    (unless ``bar`` is False: one batch shows its own bar of steps),
    otherwise one line per batch (so a log shows how far a long run got)."""

    def __init__(self, total: int, done: int, bar: bool = True) -> None:
        self.total, self.done, self.rendered = total, done, 0
        self.start = time.perf_counter()
        self.terminal = sys.stderr.isatty()
        self.bar = tqdm(
            total=total, initial=done, unit="class", desc="classes", disable=not (bar and self.terminal)
        )

    def __enter__(self) -> _Report:
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.close()

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, records: list[Record]) -> None:
        self.done += len(records)
        self.rendered += len(records)
        batch_p = _mean(records, "final_probability")
        batch_steps = _mean(records, "steps_run")
        left = self.seconds() / self.rendered * (self.total - self.done)
        left_out = len(not_converged(records))
        status = f"last batch: P_c {batch_p:.2f}, {batch_steps:.0f} steps"
        if left_out:
            status += f", {left_out} not converged"
        if self.terminal:
            self.bar.update(len(records))
            self.bar.set_postfix_str(status)
            return
        print(
            f"classmodel: {self.done}/{self.total} classes, {_clock(self.seconds())} so far, "
            f"about {_clock(left)} left ({status})",
            file=sys.stderr,
            flush=True,
        )


def _default_batch_size(model: Classifier, args: argparse.Namespace) -> int:
    size = (args.size, args.size) if args.size else model.preprocessing.input_size
    return default_batch_size(args.device, size)


def _default_workers(device: torch.device) -> int:
    """One process per torch thread on the CPU; on a GPU the GPU does the work."""
    return torch.get_num_threads() if device.type == "cpu" else 1


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


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
