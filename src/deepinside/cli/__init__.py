"""The ``deepinside`` command: parses arguments and calls the public API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._allocator import keep_freed_memory
from ..errors import DeepInsideError
from . import (
    batch_cmd,
    classes_cmd,
    classmodel_cmd,
    demo_cmd,
    evaluate_cmd,
    localize_cmd,
    saliency_cmd,
    serve_cmd,
)

_COMMANDS = (
    saliency_cmd,
    localize_cmd,
    evaluate_cmd,
    classmodel_cmd,
    batch_cmd,
    classes_cmd,
    demo_cmd,
    serve_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepinside",
        description="See what an image classifier has learned and why it decides what it decides.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return int(args.run(args) or 0)
    except DeepInsideError as err:
        print(f"deepinside: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the output folder is a file, read-only, or the disk is full
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"deepinside: error: {where}{err.strerror or err} "
            "(check the paths given and that --out can be written)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("deepinside: interrupted", file=sys.stderr)
        return 130
