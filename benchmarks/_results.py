"""Where every benchmark's numbers go, with what they were measured on.

Every result file in benchmarks/results/ has the same header (see
benchmarks/README.md): a number without its commit, date, torch version,
device and thread count cannot be compared with the next run's.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def commit() -> str:
    """The checked-out commit, with ``-dirty`` when tracked files outside the results
    have changes; ``unknown`` outside git."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        # Results being rewritten (a script adding to a file the CLI just wrote)
        # do not make the code that produced them dirty.
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":!/benchmarks/results")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def describe_device(device: str | torch.device = "cpu") -> str:
    """``cpu`` with the processor, or ``cuda:N`` with the GPU's name."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def header(benchmark: str, device: str | torch.device = "cpu") -> dict[str, object]:
    """The fields every result starts with."""
    return {
        "benchmark": benchmark,
        "command": shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "device": describe_device(device),
        "threads": torch.get_num_threads(),
    }


def write_results(
    path: Path, benchmark: str, results: object, device: str | torch.device = "cpu"
) -> dict[str, object]:
    """Write ``{header..., "results": results}`` to ``path`` as indented JSON and return it."""
    record = {**header(benchmark, device), "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record
