"""Localisation for free on the dev photos: the paper's configuration, the
default, and the whole-image and centred-box baselines, in one table, with
the run's time and peak memory.

    python benchmarks/localization.py [--data ../shared/data/imagenet-val-loc-dev] [--limit 300]
        [--config NAME ...] [--out localization.json] [--top5-photos 50]

Runs the same code as ``deepinside evaluate localization`` (every config
``--config`` takes, the product's and the ablations', or those given); writes
benchmarks/results/localization.json (or ``--out``).
With ``--top5-photos N`` it also times ``deepinside.localize`` with top-5
boxes on the first N photos, the way a user runs it, for each ``--top5-config``
(default: the default and multiscale configs).
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
from deepinside.localization import CONFIGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--config", nargs="+", action="extend", default=[])
    parser.add_argument("--out", default="localization.json")
    parser.add_argument("--top5-photos", type=int, default=0)
    parser.add_argument("--top5-config", action="append", default=[])
    args = parser.parse_args()
    path = RESULTS / args.out
    start = time.perf_counter()
    configs = ["--config", *(args.config or CONFIGS)]
    code = cli(
        [
            "evaluate",
            "localization",
            "--annotations",
            str(args.data / "annotations.json"),
            "--limit",
            str(args.limit),
            *configs,
            "--json",
            str(path),
        ]
    )
    if code != 0:
        sys.exit(code)
    results = json.loads(path.read_text())
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["peak_rss_mb"] = peak_rss_mb()
    if args.top5_photos:
        results["top5_seconds_per_photo"] = time_top5(
            args.data, args.top5_photos, args.top5_config or ["default", "multiscale"]
        )
    write_results(path, "localization", results)
    print(f"{results['seconds']} s, peak memory {results['peak_rss_mb']} MB (resident, whole process)")


def time_top5(data: Path, photos: int, configs: list[str]) -> dict[str, float]:
    """Seconds per photo of ``deepinside.localize`` with top-5 boxes, per config."""
    import deepinside

    model = deepinside.load_model()
    entries = json.loads((data / "annotations.json").read_text())[:photos]
    paths = [data / e["image"] for e in entries]
    timings = {}
    for name in configs:
        start = time.perf_counter()
        deepinside.localize(model, paths, top_k=5, config=name)
        timings[name] = round((time.perf_counter() - start) / len(paths), 3)
        print(f"{name}: {timings[name]} s per photo with top-5 boxes")
    return timings


def peak_rss_mb() -> int:
    """The process's peak resident memory so far, in MB (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak / 1024 / (1024 if sys.platform == "darwin" else 1))


if __name__ == "__main__":
    main()
