"""``deepinside classes QUERY``: find a class's index, WordNet id and names."""

from __future__ import annotations

import argparse

from ..models import imagenet_classes


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "classes",
        help="search the ImageNet class names",
        description="Print the ImageNet classes whose index, WordNet id or a name contains QUERY "
        "(one per line: index, WordNet id, names), or all 1000 without a query; the closest "
        "spellings where nothing contains it. Any of these names a class in --target and classmodel.",
    )
    p.add_argument("query", nargs="*", help="words, an index or a WordNet id (none: list all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    classes = imagenet_classes()
    query = " ".join(args.query)
    hits = classes.search(query) if query else list(classes.classes)
    if not hits:
        print(f"no class matches {query!r}")
        return 1
    for c in hits:
        print(f"{c.index:4d}  {c.wnid}  {', '.join(c.names)}")
    return 0
