"""deepinside batch: photos/s end to end, local engine and Ray engine side by
side, against the bare model's forward+backward rate; and peak memory for a
dataset and for the same dataset listed many times over (memory must not
grow with the count).

Photos/s is photos over the wall time of ``deepinside.batch.run`` (reading,
decoding, model, files and index; the model loaded and Ray started before).
Each Ray run starts its own model actor: ``ray_startup_s`` is the wall time of
a one-photo Ray run, and ``ray_after_startup`` a row's photos over its wall
time less that. Every invocation measures its own bare rate and writes its
rows as one ``--section`` of the JSON, so a long benchmark runs in pieces:

    python benchmarks/batch_throughput.py --section local --no-ray --no-memory
    python benchmarks/batch_throughput.py --section ray-64 --count 64 --no-memory
    python benchmarks/batch_throughput.py --section ray-300 --tasks gradient --batch-sizes 32 --no-memory
    python benchmarks/batch_throughput.py --section ray-1500 --listed 5 --tasks gradient \
        --batch-sizes 32 --workers 1 --no-memory
    python benchmarks/batch_throughput.py --section memory --tasks --no-ray
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _results import RESULTS, header, write_results

import deepinside
from deepinside import batch

DEV = Path("/work/shared/data/imagenet-val-loc-dev/images")  # where the project keeps its dev photos


def bare_rate(
    model: deepinside.Classifier, entries: list[batch.PhotoEntry], size: int, repeats: int
) -> float:
    """Photos/s of the model step alone: the gradient map of decoded, prepared
    photos through the same engine, with no reading, decoding or writing, so
    local / bare is what the pipeline costs on top of the model."""
    from PIL import Image

    photos = [Image.open(e.path).convert("RGB") for e in entries[:size]]
    x, _ = model.prepare(photos)

    def step() -> None:
        deepinside.saliency(model, x)

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return size / sorted(times)[len(times) // 2]


def engine_rate(model, entries, settings, engine, batch_size, workers, ray_options=None) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = batch.run(
            entries,
            out,
            model,
            settings,
            engine=engine,
            batch_size=batch_size,
            workers=workers,
            ray_options=ray_options,
        )
        seconds = time.perf_counter() - start
    assert not summary.failed and summary.done == len(entries)
    return len(entries) / seconds


def memory_run(manifest: str, out: str) -> None:
    """In a process of its own: one run, then its peak resident memory."""
    model = deepinside.load_model()
    after_load = peak_rss_mib()
    summary = batch.run(manifest, out, model, batch_size=32, workers=2)
    print(
        json.dumps(
            {
                "photos": summary.done,
                "seconds": summary.seconds,
                "peak_rss_mib": peak_rss_mib(),
                "rss_after_model_load_mib": after_load,
            }
        )
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory. Not ru_maxrss: a child started
    by a large parent inherits the parent's peak there across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def listed(files: list[Path], root: Path, copies: int) -> Path:
    """A manifest listing ``files`` ``copies`` times as distinct paths (symbolic
    links in ``copies`` folders under ``root``), so that none is skipped as done."""
    lines = ["path"]
    for c in range(copies):
        (root / f"copy{c}").mkdir(exist_ok=True)
        for f in files:
            link = root / f"copy{c}" / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
            lines.append(f"copy{c}/{f.name}")
    manifest = root / f"list{copies}.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def measure_memory(folder: Path, count: int, copies: int) -> list[dict]:
    """Peak memory for ``count`` photos and for them listed ``copies`` times."""
    files = sorted(folder.iterdir())[:count]
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in (1, copies):
            manifest = listed(files, root, n)
            result = subprocess.run(
                [sys.executable, __file__, "--memory-run", str(manifest), str(root / f"out{n}")],
                check=True,
                capture_output=True,
                text=True,
            )
            found.append({"listed": n, **json.loads(result.stdout.strip().splitlines()[-1])})
            print(found[-1], flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEV)
    parser.add_argument("--count", type=int, default=300, help="photos per throughput run")
    parser.add_argument(
        "--listed",
        type=int,
        default=1,
        help="the throughput runs' photos listed this many times (a longer run amortises Ray's start-up)",
    )
    parser.add_argument("--memory-count", type=int, default=300, help="photos of the memory run's dataset")
    parser.add_argument(
        "--copies", type=int, default=20, help="the memory run's dataset listed this many times"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--section", default="all", help="the part of the JSON's results this run replaces")
    parser.add_argument("--json", type=Path, default=RESULTS / "batch_throughput.json")
    parser.add_argument("--memory-run", nargs=2, metavar=("MANIFEST", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(*args.memory_run)
        return

    model = deepinside.load_model()
    listing = tempfile.TemporaryDirectory()
    files = [e.path for e in batch.list_photos(args.photos)[: args.count]]
    entries = batch.list_photos(listed([Path(f) for f in files], Path(listing.name), args.listed))
    report: dict[str, object] = {**header("batch_throughput"), "photos": len(entries), "listed": args.listed}
    bare = bare_rate(model, batch.list_photos(args.photos), 32, repeats=5)  # whatever --count is
    report["bare_forward_backward_batch32_photos_per_s"] = bare
    print(f"bare forward+backward, batch 32: {bare:.1f} photos/s", flush=True)
    engines = ["local"] if args.no_ray else ["local", "ray"]
    startup = 0.0
    if "ray" in engines and args.tasks:
        import ray

        ray.init(
            num_cpus=os.cpu_count(),
            object_store_memory=500 * 2**20,
            include_dashboard=False,
            log_to_driver=False,
        )
        one = entries[:1]
        startup = len(one) / engine_rate(model, one, batch.BatchSettings(), "ray", 1, 1, ray_options(model))
        report["ray_startup_s"] = startup
        print(f"ray: a one-photo run takes {startup:.1f} s", flush=True)
    rows = []
    for task in args.tasks:
        for size in args.batch_sizes:
            for workers in args.workers:
                row: dict[str, object] = {"task": task, "batch_size": size, "workers": workers}
                for engine in engines:
                    options = ray_options(model) if engine == "ray" else None
                    row[engine] = engine_rate(model, entries, TASKS[task], engine, size, workers, options)
                if "ray" in row:
                    row["ray_over_local"] = row["ray"] / row["local"]
                    seconds = len(entries) / row["ray"]
                    row["ray_after_startup"] = len(entries) / max(seconds - startup, 1e-9)
                row["local_over_bare"] = row["local"] / bare
                rows.append(row)
                print(row, flush=True)
    if rows:
        report["throughput_photos_per_s"] = rows
    if not args.no_memory:
        report["memory"] = measure_memory(args.photos, args.memory_count, args.copies)
    results = existing_sections(args.json)
    results[args.section] = report
    write_results(args.json, "batch_throughput", results)
    print(f"written {args.json} ({args.section})")


TASKS = {"gradient": batch.BatchSettings(), "gradient+localize": batch.BatchSettings(localize="paper")}


def ray_options(model: deepinside.Classifier) -> dict[str, object]:
    """One actor with the torch threads the local engine has; decoding tasks beside it."""
    return {"threads_per_actor": torch.get_num_threads()}


def existing_sections(path: Path) -> dict[str, object]:
    """The results of the other pieces already in ``path`` (each a section)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    results = found.get("results", {}) if found.get("benchmark") == "batch_throughput" else {}
    return results if all(isinstance(v, dict) and "commit" in v for v in results.values()) else {}


if __name__ == "__main__":
    main()
