"""A batch run killed with SIGKILL, whole process group, goes on where it
stopped: each photo once in the index, every file equal to an uninterrupted
run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deepinside import batch

from .conftest import without_timings

# Shards of one row: the kill lands between finished and unfinished photos.
# Each shard is followed by a pause, so that on a fast machine the kill still
# lands before the last photo (the decoding and writing go on meanwhile).
RUN = """
import sys, time, deepinside
from deepinside import batch
from deepinside.batch.index import IndexWriter
flush = IndexWriter.flush
def slow_flush(self):
    written = flush(self)
    time.sleep(0.5)
    return written
IndexWriter.flush = slow_flush
batch.run(sys.argv[1], sys.argv[2], deepinside.load_model(), batch.BatchSettings(index_format="jsonl"),
          batch_size=1, workers=1, shard_rows=1)
"""


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in (out / "maps").rglob("*") if p.is_file()}


def test_a_killed_run_resumes_to_the_same_results(tmp_path, photo_folder, model):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, str(photo_folder), str(killed)],
        start_new_session=True,  # its own process group: the decoding worker dies with it
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(batch.shard_paths(killed)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(batch.read_index(killed))
    assert 2 <= finished < 5, "the run should be killed in the middle"

    settings = batch.BatchSettings(index_format="jsonl")
    summary = batch.run(photo_folder, killed, model, settings, batch_size=1, workers=0)
    assert summary.skipped == finished and summary.done + len(summary.failed) == 5 - finished
    batch.run(photo_folder, whole, model, settings, batch_size=1, workers=0)

    rows = batch.read_index(killed)
    assert sorted(r["path"] for r in rows) == sorted({r["path"] for r in rows})  # each once
    assert without_timings(rows) == without_timings(batch.read_index(whole))
    assert _files(killed) == _files(whole)
    assert not [p for p in killed.rglob("*") if p.name.endswith(".tmp")]
