"""``deepinside saliency IMAGE...``: the paper's maps for photos and folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..errors import DeepInsideError
from ..explain import PhotoFailure, explain_photos
from ..explain_files import RAW_FORMATS, save_saliency
from ..io.names import UniqueStems
from ..io.photos import expand_paths
from ._common import (
    IMAGES_HELP,
    add_method_args,
    add_model_args,
    methods_from_args,
    model_from_args,
    positive_int,
    report_written,
)

#: What ``--raw`` costs per map of a 12-megapixel photo (docs/output-files.md: the
#: smaller figure is grad-cam's smoother map, the larger gradient's). npy stays the
#: default: lossless, fastest to write and read, and ``np.load(..., mmap_mode="r")``
#: reads part of it without loading it all.
RAW_HELP = (
    "how each map's values are kept, with the size per map of a 12-megapixel photo: npy (float32, "
    "48 MB), npz (float32 compressed, 32-42 MB), npz16 (float16 compressed, 4-19 MB; within 0.05%% "
    "of the map's maximum), none (no values, only the two PNGs, 6-14 MB) (default: %(default)s)"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "saliency",
        help="image-specific class saliency maps (paper section 3) and the methods that followed",
        description="For each photo and class: the paper's grey map, an overlay and the raw map "
        "(photo size), named PHOTO.METHOD.CLASS.KIND (saliency.png, overlay.png, raw.npy), so runs "
        "with different methods can share --out; and PHOTO.json, listing every map of the photo "
        "in --out with the top predictions.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help=IMAGES_HELP)
    p.add_argument(
        "--target",
        action="append",
        metavar="CLASS",
        help="class to explain: index, WordNet id or name (repeatable; default: the top predictions)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="explain the K best classes of each photo (default 1; not with --target)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-out"), help="output folder (default %(default)s)"
    )
    p.add_argument("--raw", choices=RAW_FORMATS, default="npy", help=RAW_HELP)
    p.add_argument("--batch-size", type=positive_int, default=8, help="photos per pass (default 8)")
    add_method_args(p, default=["gradient"])
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.target and args.top_k is not None:
        raise DeepInsideError("give --target (these classes) or --top-k (the K best), not both")
    methods = methods_from_args(args)  # a wrong option fails before the model loads
    model = model_from_args(args)
    targets = model.classes.resolve_many(args.target) if args.target else None
    paths = list(expand_paths(args.images))
    if not paths:
        print("deepinside: error: no files found in the folders given", file=sys.stderr)
        return 2
    failed: set[str] = set()
    for method in methods:  # one pass a method; each photo's JSON gathers them all
        results = explain_photos(
            model,
            paths,
            targets=targets,
            top_k=1 if args.top_k is None else args.top_k,
            batch_size=args.batch_size,
            max_pixels=args.max_pixels,
            method=method,
            reduce=args.reduce,
            deterministic=args.deterministic,
        )
        stems = UniqueStems()
        desc = "saliency" if len(methods) == 1 else method.name
        with tqdm(total=len(paths), unit="image", desc=desc, file=sys.stderr, disable=None) as bar:
            for result in results:
                bar.update()
                if isinstance(result, PhotoFailure):
                    if result.source not in failed:
                        tqdm.write(f"deepinside: skipped {result.reason}", file=sys.stderr)
                    failed.add(result.source)
                    continue
                save_saliency(result, args.out, stems.next(result.source), model.name, raw=args.raw)
    report_written(len(paths) - len(failed), paths, "explained", args.out)
    return 1 if failed else 0
