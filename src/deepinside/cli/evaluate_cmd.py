"""``deepinside evaluate METRIC``: how good are the maps, measured."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import cast

from tqdm import tqdm

from ..errors import DeepInsideError, ImageError
from ..evaluation import load_annotations, match_images
from ..evaluation import run as evaluation
from ..evaluation.localization import localization
from ..io.files import write_json
from ..io.photos import expand_paths, load_photo
from ..localization import CONFIGS, PRESETS, config_named
from ._common import (
    IMAGES_HELP,
    add_method_args,
    add_model_args,
    methods_from_args,
    model_from_args,
    positive_int,
)

METRICS = ("faithfulness", "pointing-game", "sanity-check", "localization")

#: Options of one metric each: the option and the metric that takes it.
METRIC_OPTIONS = {
    "steps": ("--steps", "faithfulness"),
    "tolerance": ("--tolerance", "pointing-game"),
    "checkpoints": ("--checkpoints", "sanity-check"),
    "config": ("--config", "localization"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure maps: deletion/insertion AUC, pointing game, sanity check",
        description="Compare attribution methods on photos, one table row per method. faithfulness: "
        "deletion and insertion AUC (Petsiuk et al. 2018) with a random-order baseline; pointing-game: "
        "does the map's maximum fall within --tolerance pixels of a box of the class (Zhang et al. 2016; "
        "needs --annotations); sanity-check: cascading randomisation (Adebayo et al. 2018); localization: "
        "boxes from saliency (paper section 3.1) against the true boxes (needs --annotations).",
    )
    p.add_argument("metric", choices=METRICS, help="what to measure")
    p.add_argument(
        "--images",
        nargs="+",
        metavar="IMAGE",
        help=f"{IMAGES_HELP}; with --annotations, each is matched to its entry by path or file name "
        "(default: all annotated photos)",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        help="JSON list of entries with image, class_index and boxes (imagenet-val-loc-dev format); "
        "an entry's image path is relative to the annotations file's folder",
    )
    p.add_argument("--limit", type=positive_int, help="use only the first N photos")
    # Metric options default to None so that one given to another metric is refused.
    p.add_argument("--steps", type=positive_int, help="faithfulness: deletion/insertion steps (default 50)")
    p.add_argument(
        "--tolerance",
        type=float,
        help="pointing game: pixels of slack, of the original photo where the annotations give "
        "original_size (default 15)",
    )
    p.add_argument(
        "--checkpoints", type=positive_int, help="sanity check: points along the cascade (default 8)"
    )
    p.add_argument(
        "--config",
        nargs="+",
        choices=list(CONFIGS),
        help="localization: configurations to compare (default: paper and default; the ablations by name)",
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="photos per pass (default 8)")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    add_method_args(p)
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.images is None and args.annotations is None:
        raise DeepInsideError("give --images, --annotations, or both")
    if args.metric in ("pointing-game", "localization") and args.annotations is None:
        raise DeepInsideError(f"{args.metric} needs object boxes: give --annotations FILE")
    _check_metric_options(args)
    methods_from_args(args)  # a wrong option fails before the model loads
    model = model_from_args(args)
    methods = methods_from_args(args, model)
    entries = None
    if args.annotations is not None:
        entries = load_annotations(args.annotations, len(model.classes))
        paths = list(expand_paths(args.images)) if args.images else None
        entries = match_images(entries, paths)
        paths = [e.image for e in entries]
    else:
        paths = list(expand_paths(args.images))
    paths, entries = paths[: args.limit], (entries[: args.limit] if entries else entries)
    if not paths:
        raise DeepInsideError("no photos to evaluate")
    skipped: list[str] = []

    def skip(err: ImageError) -> None:
        skipped.append(str(err))
        print(f"deepinside: skipped {err}", file=sys.stderr)

    samples = evaluation.samples_from(paths, lambda p: load_photo(p, args.max_pixels), entries, skip)
    if not samples:
        raise DeepInsideError(f"none of the {len(paths)} photos could be read")
    per_photo = {"faithfulness": len(methods) + 1, "pointing-game": len(methods), "localization": 1}
    total = len(samples) * per_photo.get(args.metric, len(methods))
    # The metric's own option is passed only when given: its default lives with the metric.
    given = {
        o: getattr(args, o) for o in ("steps", "tolerance", "checkpoints") if getattr(args, o) is not None
    }
    common = {"batch_size": args.batch_size, "reduce": args.reduce, "deterministic": args.deterministic}
    with tqdm(total=total, desc=args.metric, unit="map", file=sys.stderr, disable=None) as bar:

        def advance(maps: int) -> None:
            bar.update(maps)

        if args.metric == "faithfulness":
            rows = evaluation.faithfulness(model, samples, methods, progress=advance, **common, **given)
        elif args.metric == "pointing-game":
            rows = evaluation.pointing(model, samples, methods, progress=advance, **common, **given)
        elif args.metric == "localization":
            configs = [config_named(c) for c in args.config or PRESETS]
            rows = localization(
                model, samples, configs, args.batch_size, advance, deterministic=args.deterministic
            )
        else:
            rows = evaluation.sanity(model, samples, methods, progress=advance, **common, **given)
    print(format_table(args.metric, rows))
    if args.json:
        write_json(args.json, {"metric": args.metric, "model": model.name, "rows": rows, "skipped": skipped})
    if skipped:
        print(
            f"deepinside: {len(skipped)} of {len(paths)} photos could not be read and were left out",
            file=sys.stderr,
        )
    return 1 if skipped else 0


def _check_metric_options(args: argparse.Namespace) -> None:
    """Refuse an option of another metric, naming the metric that takes it."""
    for dest, (flag, metric) in METRIC_OPTIONS.items():
        if getattr(args, dest) is not None and args.metric != metric:
            raise DeepInsideError(f"{flag} applies to evaluate {metric} only, not to {args.metric}")


def _tolerance_note(row: dict[str, object]) -> str:
    where = {
        "original": "of the original photo (from the annotations' original_size)",
        "stored": "of the photo as stored (the annotations give no original_size)",
        "mixed": "of the original photo where the annotations give original_size, else of the stored photo",
    }[str(row["tolerance_of"])]
    return f"tolerance: {row['tolerance_px']:g} px {where}"


def format_table(metric: str, rows: list[dict[str, object]]) -> str:
    if metric == "faithfulness":
        lines = [
            f"{'method':<22} {'images':>6} {'deletion AUC (lower better)':>28} "
            f"{'insertion AUC (higher better)':>30}"
        ]
        lines += [
            f"{r['method']:<22} {r['images']:>6} {r['deletion_auc']:>28.4f} {r['insertion_auc']:>30.4f}"
            for r in rows
        ]
    elif metric == "localization":
        lines = [
            f"{'config':<14} {'images':>6} {'GT-known':>9} {'top-1 loc':>10} {'top-5 err':>10} "
            f"{'MaxBoxAcc .3':>13} {'.5':>6} {'.7':>6} {'V2 (mean)':>10} {'s/image':>8}"
        ]
        for r in rows:
            seconds = f"{r['seconds_per_image']:>8.2f}" if "seconds_per_image" in r else f"{'-':>8}"
            extra = (
                f"{r['maxboxacc_0.3']:>13.1%} {r['maxboxacc_0.5']:>6.1%} {r['maxboxacc_0.7']:>6.1%} "
                f"{r['maxboxacc_v2']:>10.1%} {seconds}"
            )
            lines.append(
                f"{r['config']:<14} {r['images']:>6} {r['gt_known_loc']:>9.1%} {r['top1_loc']:>10.1%} "
                f"{r['top5_loc_error']:>10.1%} {extra}"
            )
    elif metric == "pointing-game":
        lines = [f"{'method':<22} {'images':>6} {'accuracy':>9}"]
        lines += [f"{r['method']:<22} {r['images']:>6} {r['accuracy']:>9.1%}" for r in rows]
        lines.append(_tolerance_note(rows[0]))
    else:
        # sanity() gives each method's rank correlations and the checkpoints' layers as lists.
        spearman = [cast(list[float], r["spearman"]) for r in rows]
        layers = cast(list[str], rows[0]["layers"])
        marks = len(spearman[0])
        head = " ".join(f"{'r' + str(i + 1):>6}" for i in range(marks))
        lines = [
            f"{'method':<22} {head} {'mean r':>7} {'final SSIM':>10}  verdict",
            "(rank correlation with the original map as layers are randomised from the top)",
        ]
        for r, correlations in zip(rows, spearman):
            cells = " ".join(f"{v:>6.2f}" for v in correlations)
            lines.append(
                f"{r['method']:<22} {cells} {r['survival']:>7.2f} {r['final_ssim']:>10.2f}  {r['verdict']}"
            )
        lines.append("last layer randomised at each point: " + ", ".join(layers))
    return "\n".join(lines)
