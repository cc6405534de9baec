"""``deepinside batch INPUT --out DIR``: a whole dataset, resumable, on this
machine or a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import batch
from ..errors import DeepInsideError
from ..localization import PRESETS
from ..models import Classifier
from ._common import add_method_args, add_model_args, methods_from_args, model_from_args, positive_int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "batch",
        help="explain a whole dataset (folder or manifest), resumable, here or on a Ray cluster",
        description="Maps (.npz per photo) and an index (one row per photo, in Parquet or JSONL shards) "
        "for every photo of INPUT. Run it again to go on after an interruption: photos already in the "
        "index are skipped. Exit status 1 if any photo failed, 2 for wrong options.",
    )
    p.add_argument("input", metavar="INPUT", help="a folder (searched recursively) or a .csv/.jsonl manifest")
    p.add_argument("--out", type=Path, required=True, help="output folder (created; reused to resume)")
    p.add_argument(
        "--targets",
        default="top1",
        metavar="top1|top5|LIST",
        help="classes to map: top1, top5 (any topK), or classes for every photo, comma-separated",
    )
    p.add_argument(
        "--localize",
        nargs="?",
        const="default",
        choices=list(PRESETS),
        metavar="CONFIG",
        help=f"also find a box per mapped class (a config of localize: {', '.join(PRESETS)}; alone: default)",
    )
    p.add_argument("--pictures", action="store_true", help="also write a PNG overlay per map")
    p.add_argument("--float16", action="store_true", help="store maps as float16 (half the disk)")
    p.add_argument(
        "--compress",
        action="store_true",
        help="deflate the maps' .npz files: smaller for smooth maps (grad-cam) and with --float16, "
        "about a tenth for float32 gradients, at more CPU per photo (default: stored)",
    )
    p.add_argument(
        "--index",
        choices=["parquet", "jsonl"],
        default="parquet",
        help="index format (default parquet: pyarrow)",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="photos per model pass (default 32)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="threads decoding photos ahead of the model (default 2; 0: none)",
    )
    p.add_argument("--overwrite", action="store_true", help="delete the results of a run with other settings")
    p.add_argument("--engine", choices=list(batch.ENGINES), default="local", help="local (default) or ray")
    p.add_argument("--address", help="ray: the cluster to join (default: start Ray on this machine)")
    p.add_argument("--actors", type=positive_int, default=1, help="ray: model actors (default 1)")
    p.add_argument(
        "--gpus-per-actor", type=float, default=None, help="ray: GPUs per actor (default 1 if any)"
    )
    add_method_args(p, default=["gradient"])  # maps of every method for a dataset would be many
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise DeepInsideError(f"--workers must be 0 or more, got {args.workers}")
    if args.engine == "ray":
        from ..batch.ray_engine import require_ray

        require_ray()
    model = model_from_args(args)
    settings = batch.BatchSettings(
        methods=tuple(methods_from_args(args, model)),
        targets=_targets(args.targets, model),
        reduce=args.reduce,
        localize=args.localize,
        float16=args.float16,
        compress=args.compress,
        pictures=args.pictures,
        index_format=args.index,
    )
    ray_options: batch.RayOptions = {
        "address": args.address,
        "actors": args.actors,
        "gpus_per_actor": args.gpus_per_actor,
    }
    summary = batch.run(
        args.input,
        args.out,
        model,
        settings,
        engine=args.engine,
        batch_size=args.batch_size,
        workers=args.workers,
        overwrite=args.overwrite,
        max_pixels=args.max_pixels,
        progress=None,
        ray_options=ray_options if args.engine == "ray" else None,
    )
    _report(summary)
    return 1 if summary.failed else 0


def _targets(text: str, model: Classifier) -> str | tuple[int, ...]:
    if text.startswith("top"):
        return text
    return tuple(model.classes.resolve_many([t.strip() for t in text.split(",") if t.strip()]))


def _report(summary: batch.BatchSummary) -> None:
    print(
        f"{summary.done} photos explained, {summary.skipped} already done, {len(summary.failed)} failed "
        f"of {summary.total} in {summary.seconds:.1f} s; index in {summary.out / 'index'}",
        file=sys.stderr,
    )
    for _, reason in summary.failed[:10]:
        print(f"  failed: {reason}", file=sys.stderr)
    if len(summary.failed) > 10:
        print(
            f"  ... and {len(summary.failed) - 10} more (the index's error column has them all)",
            file=sys.stderr,
        )
