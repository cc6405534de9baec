"""Localisation for free on the dev photos: the paper's configuration, the
default, and the whole-image and centred-box baselines, in one table, with
the run's time and peak memory.

    python benchmarks/localization.py [--data ../shared/data/imagenet-val-loc-dev] [--limit 300]

Runs the same code as ``deepinside evaluate localization``; writes
benchmarks/results/localization.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from _results import RESULTS, write_results

from deepinside.cli import main as cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    path = RESULTS / "localization.json"
    start = time.perf_counter()
    code = cli(
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
    if code != 0:
        sys.exit(code)
    results = json.loads(path.read_text())
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["peak_rss_mb"] = peak_rss_mb()
    write_results(path, "localization", results)
    print(f"{results['seconds']} s, peak memory {results['peak_rss_mb']} MB (resident, whole process)")


def peak_rss_mb() -> int:
    """The process's peak resident memory so far, in MB (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak / 1024 / (1024 if sys.platform == "darwin" else 1))


if __name__ == "__main__":
    main()
