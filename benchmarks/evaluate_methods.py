"""Every attribution method on the dev photos: deletion/insertion AUC, pointing
game and sanity check, through the same code as ``deepinside evaluate``.

    python benchmarks/evaluate_methods.py [--data ../shared/data/imagenet-val-loc-dev]
        [--faithfulness 50] [--pointing 100] [--sanity 10] [--metrics pointing-game ...]

Numbers are the first N annotated photos of each; targets are the true classes.
Writes benchmarks/results/evaluate_<metric>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _results import RESULTS, write_results

from deepinside.cli import main as cli

METRICS = ["pointing-game", "faithfulness", "sanity-check"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--faithfulness", type=int, default=50, help="photos for deletion/insertion")
    parser.add_argument("--pointing", type=int, default=100, help="photos for the pointing game")
    parser.add_argument("--sanity", type=int, default=10, help="photos for the sanity check")
    parser.add_argument("--steps", type=int, default=25, help="deletion/insertion steps")
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=METRICS,
        default=METRICS,
        help="which metrics to run (default: all three)",
    )
    args = parser.parse_args()
    annotations = str(args.data / "annotations.json")
    for metric, limit, extra in [
        ("pointing-game", args.pointing, []),
        ("faithfulness", args.faithfulness, ["--steps", str(args.steps)]),
        ("sanity-check", args.sanity, []),
    ]:
        if metric not in args.metrics:
            continue
        print(f"\n== {metric}, {limit} photos ==", flush=True)
        path = RESULTS / f"evaluate_{metric}.json"
        cli(
            [
                "evaluate",
                metric,
                "--annotations",
                annotations,
                "--limit",
                str(limit),
                "--json",
                str(path),
                *extra,
            ]
        )
        write_results(path, f"evaluate_{metric}", json.loads(path.read_text()))


if __name__ == "__main__":
    main()
