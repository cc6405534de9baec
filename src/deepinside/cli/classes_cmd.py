"""``deepinside classes QUERY``: find a class's index, WordNet id and names."""

from __future__ import annotations

import argparse

from ..errors import DeepInsideError
from ..models import BUILTIN_MODELS, DEFAULT_MODEL, ClassIndex, imagenet_classes, read_class_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "classes",
        help="search the ImageNet class names, or your model's",
        description="Print the ImageNet classes whose index, WordNet id or names hold QUERY's words "
        "(one per line: index, WordNet id, names), whole-word matches first and rarer words first, "
        "or all of them without a query; the closest spellings, said as such, where nothing holds "
        "them. Any of these names a class in --target and classmodel. "
        "Your own model's names come from --classes FILE.",
    )
    p.add_argument("query", nargs="*", help="words, an index or a WordNet id (none: list all)")
    p.add_argument(
        "--classes",
        metavar="FILE",
        help="search your model's class file (one class per line) instead of ImageNet's names",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="whose classes: a built-in model (ImageNet's); your own model's come from --classes FILE",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    classes = _classes(args)
    query = " ".join(args.query)
    hits = classes.matches(query) if query else [(c, "name") for c in classes.classes]
    if not hits:
        print(f"no class matches {query!r}")
        return 1
    if hits[0][1] == "close":
        print(f"no class name holds {query!r}; the closest spellings:")
    for c, _ in hits:
        wnid = f"{c.wnid}  " if c.wnid else ""
        print(f"{c.index:4d}  {wnid}{', '.join(c.names)}")
    return 0


def _classes(args: argparse.Namespace) -> ClassIndex:
    if args.classes:
        return read_class_file(args.classes)
    if args.model not in BUILTIN_MODELS:
        raise DeepInsideError(
            f"model {args.model!r} names its classes only through a class file: "
            "deepinside classes --classes FILE [WORD]"
        )
    return imagenet_classes()
