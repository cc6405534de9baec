"""``deepinside localize IMAGE...``: object boxes from saliency (paper section 3.1)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .. import pictures
from ..attribution.methods import method_from_name
from ..explain import PhotoFailure, read_batches
from ..io.files import write_json, write_png
from ..io.names import UniqueStems, localize_tag, photo_file
from ..io.photos import expand_paths
from ..localization import ABLATIONS, CONFIGS, DEFAULT_BATCH_SIZE, PhotoBoxes, config_named, localize
from ._common import (
    IMAGES_HELP,
    add_deterministic_arg,
    add_model_args,
    model_from_args,
    positive_int,
    report_written,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "localize",
        help="object boxes from saliency, no box supervision (paper section 3.1)",
        description="For each photo: a JSON with one box per top-k class (photo pixels, x1/y1 exclusive, "
        "top-1 first), an overlay with the boxes, and the top-1 foreground mask, named "
        "PHOTO.localize-CONFIG[-METHOD].json, .boxes.png and .mask.png.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help=IMAGES_HELP)
    p.add_argument(
        "--top-k", type=int, default=5, help="boxes for the K best classes (default 5, as the paper)"
    )
    p.add_argument(
        "--config",
        choices=list(CONFIGS),
        default="default",
        help="paper: the paper's gradient map + GraphCut; default: measured best (Grad-CAM at three "
        "scales carried over the affinities of the network's own finer features, cut at Otsu's "
        f"threshold); ablations of the default, for measuring its steps: {', '.join(ABLATIONS)} "
        "(see docs/localization.md)",
    )
    p.add_argument(
        "--method", help="override the config's saliency method (e.g. gradient, smoothgrad, grad-cam)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-out"), help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="photos read and prepared at a time (default %(default)s); the rows of each pass "
        "are bounded by memory whatever it is",
    )
    add_deterministic_arg(p)
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    config = config_named(args.config)
    if args.method:
        method_from_name(args.method)  # an unknown name fails before any work
        config = dataclasses.replace(
            config, name=f"{config.name}, method {args.method}", method=args.method, method_options=()
        )
    if not 1 <= args.top_k <= len(model.classes):
        print(
            f"deepinside: error: --top-k must be between 1 and {len(model.classes)}, got {args.top_k}",
            file=sys.stderr,
        )
        return 2
    paths = list(expand_paths(args.images))
    if not paths:
        print("deepinside: error: no files found in the folders given", file=sys.stderr)
        return 2
    tag = localize_tag(args.config, args.method)
    failures, stems = 0, UniqueStems()
    with tqdm(total=len(paths), unit="image", desc="localize", file=sys.stderr, disable=None) as bar:
        for part in read_batches(paths, args.batch_size, args.max_pixels):
            if isinstance(part, PhotoFailure):
                failures += 1
                bar.update()
                tqdm.write(f"deepinside: skipped {part.reason}", file=sys.stderr)
                continue
            for (source, photo), found in zip(
                part,
                localize(
                    model, [p for _, p in part], args.top_k, config, args.batch_size, args.deterministic
                ),
            ):
                layer = (config.layer or model.feature_layer) if config.uses_feature_layer else None
                _save(args.out, stems.next(source), tag, source, photo, found, model.name, config.name, layer)
                bar.update()
    report_written(len(paths) - failures, paths, "localised", args.out)
    return 1 if failures else 0


def _save(
    out: Path,
    stem: str,
    tag: str,
    source: str,
    photo: Image.Image,
    found: PhotoBoxes,
    model: str,
    config: str,
    layer: str | None,
) -> None:
    labelled = [(b.box, b.prediction.label, b.prediction.probability) for b in found.boxes]
    overlay, mask = photo_file(stem, tag, "boxes", "png"), photo_file(stem, tag, "mask", "png")
    write_png(out / overlay, pictures.draw_boxes_with_legend(photo, labelled))
    write_png(out / mask, pictures.mask_image(found.boxes[0].mask, photo.size))
    write_json(
        out / f"{stem}.{tag}.json",
        {
            "image": source,
            "width": found.width,
            "height": found.height,
            "model": model,
            "config": config,
            **({"feature_layer": layer} if layer else {}),
            "predictions": [p.as_dict() for p in found.predictions],
            "boxes": [b.as_dict() for b in found.boxes],
            "files": {"overlay": overlay, "mask": mask},
        },
    )
