"""Localisation for free on the dev photos: the paper's configuration, the
default, and the whole-image and centred-box baselines, in one table.

    python benchmarks/localization.py [--data ../shared/data/imagenet-val-loc-dev] [--limit 300]

Runs the same code as ``deepinside evaluate localization``; writes
benchmarks/results/localization.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _results import RESULTS, write_results

from deepinside.cli import main as cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    path = RESULTS / "localization.json"
    cli(
        [
            "evaluate",
            "localization",
            "--annotations",
            str(args.data / "annotations.json"),
            "--limit",
            str(args.limit),
            "--json",
            str(path),
        ]
    )
    write_results(path, "localization", json.loads(path.read_text()))


if __name__ == "__main__":
    main()
