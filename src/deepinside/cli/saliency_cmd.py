"""``deepinside saliency IMAGE...``: the paper's maps for photos and folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..explain import PhotoFailure, explain_photos
from ..io.photos import expand_paths
from ..io.results import save_saliency
from ._common import add_method_args, add_model_args, methods_from_args, model_from_args, positive_int


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "saliency",
        help="image-specific class saliency maps (paper section 3) and the methods that followed",
        description="For each photo and class: the paper's grey map, an overlay, the raw map "
        "(.npy, float32, photo size) and a JSON record with the top predictions.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos or folders of photos")
    p.add_argument(
        "--target",
        action="append",
        metavar="CLASS",
        help="class to explain: index, WordNet id or name (repeatable; default: the top predictions)",
    )
    p.add_argument(
        "--top-k", type=int, default=1, help="explain the K best classes of each photo (default 1)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-out"), help="output folder (default %(default)s)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="photos per pass (default 8)")
    add_method_args(p)
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    (method,) = methods_from_args(args)
    targets = model.classes.resolve_many(args.target) if args.target else None
    paths = list(expand_paths(args.images))
    if not paths:
        print("deepinside: error: no files found in the folders given", file=sys.stderr)
        return 2
    results = explain_photos(
        model,
        paths,
        targets=targets,
        top_k=args.top_k,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
        method=method,
        reduce=args.reduce,
        deterministic=args.deterministic,
    )
    failures, stems = 0, UniqueStems()
    with tqdm(total=len(paths), unit="image", desc="saliency", file=sys.stderr, disable=None) as bar:
        for result in results:
            bar.update()
            if isinstance(result, PhotoFailure):
                failures += 1
                tqdm.write(f"deepinside: skipped {result.reason}", file=sys.stderr)
                continue
            save_saliency(result, args.out, stems.next(result.source), model.name)
    done = len(paths) - failures
    print(f"{done} of {len(paths)} images explained; results in {args.out}", file=sys.stderr)
    return 1 if failures else 0


class UniqueStems:
    """File stems for results, distinct within a run (two ``cat.jpg`` in
    different folders become ``cat`` and ``cat-2``; a ``cat-2.jpg`` after
    them becomes ``cat-2-2``), also where case does not count."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def next(self, source: str) -> str:
        base = Path(source).stem or "image"
        stem, n = base, 1
        while stem.lower() in self._used:
            n += 1
            stem = f"{base}-{n}"
        self._used.add(stem.lower())
        return stem
