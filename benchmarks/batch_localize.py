"""What `batch --localize` costs against `localize --top-k 1` on the same photos.

Both commands run as a user runs them, each in a process of its own, in turns
(``--repeats`` pairs), on the first ``--count`` dev photos: wall time from the
start of the command to its exit (the model loaded inside) and the command's
peak resident memory (VmHWM of its main process; batch's decoding workers are
small processes of their own and not counted). Batch runs at each
``--batch-sizes``; its cost should follow localize's whatever the batch size.

    python benchmarks/batch_localize.py --count 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import RESULTS, write_results

DEV = Path("/work/shared/data/imagenet-val-loc-dev/images")  # where the project keeps its dev photos


def measured_run(argv: list[str]) -> None:
    """In a process of its own: the command, then its wall time and peak memory as JSON."""
    from deepinside.cli import main

    start = time.perf_counter()
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    seconds = time.perf_counter() - start
    print(json.dumps({"exit": code, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry a
    large parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def timed(argv: list[str]) -> dict[str, float]:
    """One command in a fresh process: its seconds and peak MiB; a failed command stops the benchmark."""
    done = subprocess.run(
        [sys.executable, __file__, "--measure", *argv], capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    found = json.loads(lines[-1])
    if found["exit"]:
        sys.exit(f"{' '.join(argv)} exited with {found['exit']}: {done.stderr.strip()[-500:]}")
    return {"seconds": found["seconds"], "peak_rss_mib": found["peak_rss_mib"]}


def photo_folder(count: int, root: Path) -> Path:
    """The first ``count`` dev photos, linked into a folder of their own."""
    folder = root / "photos"
    folder.mkdir()
    for photo in sorted(DEV.iterdir())[:count]:
        (folder / photo.name).symlink_to(photo)
    return folder


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        "runs": runs,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--json", type=Path, default=RESULTS / "batch_localize.json")
    if sys.argv[1:2] == ["--measure"]:
        measured_run(sys.argv[2:])
        return
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = photo_folder(args.count, root)
        commands = {"localize --top-k 1": ["localize", str(photos), "--top-k", "1"]}
        for size in args.batch_sizes:
            commands[f"batch --localize, batch size {size}"] = [
                "batch",
                str(photos),
                "--localize",
                "--batch-size",
                str(size),
            ]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        for repeat in range(args.repeats):
            for number, (name, argv) in enumerate(commands.items()):
                out = root / f"out-{repeat}-{number}"
                runs[name].append(timed([*argv, "--out", str(out)]))
                print(name, runs[name][-1], flush=True)
    results = {name: summary(found) for name, found in runs.items()}
    base = results["localize --top-k 1"]["median_seconds"]
    for found in results.values():
        found["seconds_over_localize"] = found["median_seconds"] / base
    write_results(args.json, "batch_localize", {"photos": args.count, **results})
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
