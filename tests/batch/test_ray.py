"""The Ray engine on a local Ray instance gives the local engine's results."""

from __future__ import annotations

import numpy as np
import pytest

from deepinside import batch

from .conftest import without_timings

#: Slow (a real browser, a Ray instance, many threads, the whole matrix): `make test-fast` skips it.
pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _close(a: object, b: object) -> bool:
    """Equal, floats to float32 round-off (a batch of other photos sums in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-5 * max(1.0, abs(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_close, a, b))
    return a == b


def test_ray_engine_matches_the_local_engine_and_resumes(local_ray, tmp_path, photo_folder, model):
    settings = batch.BatchSettings(index_format="jsonl", localize="paper")
    here, there = tmp_path / "here", tmp_path / "there"
    batch.run(photo_folder, here, model, settings, batch_size=2, workers=0)
    entries = batch.list_photos(photo_folder)
    summary = batch.run(entries[:3], there, model, settings, engine="ray", batch_size=2, workers=1)
    assert summary.done + len(summary.failed) == 3
    summary = batch.run(photo_folder, there, model, settings, engine="ray", batch_size=2, workers=1)
    assert summary.skipped == 3 and summary.done + len(summary.failed) == 2

    ours, theirs = without_timings(batch.read_index(here)), without_timings(batch.read_index(there))
    assert [r["path"] for r in theirs] == [r["path"] for r in ours]  # each photo once
    assert _close(ours, theirs)
    for npz in (here / "maps").rglob("*.npz"):
        with np.load(npz) as a, np.load(there / npz.relative_to(here)) as b:
            assert a.files == b.files
            for k in a.files:  # within float32 round-off of the map's peak
                assert np.abs(a[k] - b[k]).max() <= 1e-4 * max(np.abs(a[k]).max(), 1e-12), k


def test_class_models_on_ray_resume_and_match_a_local_run(local_ray, tmp_path, model):
    import torch

    from deepinside.batch.classmodels import render_on_ray
    from deepinside.visualization.job import ClassModelJob, run_job

    def job(out):
        return ClassModelJob.for_model(model, [1, 2, 3], out, steps=1, size=64, batch_size=1, retries=0)

    there = job(tmp_path / "there")
    threads = torch.get_num_threads()
    assert render_on_ray(there, model, there.start()[:1], actors=2, threads_per_actor=threads) == 1
    left = there.start()  # the first class is done: a rerun renders the others
    assert sum(map(len, left)) == 2
    assert render_on_ray(there, model, left, actors=2, threads_per_actor=threads) == 2
    here = job(tmp_path / "here")
    run_job(here, model)
    for a, b in zip(here.finish(), there.finish()):
        assert a == b
    for png in (tmp_path / "here").glob("*.png"):
        if png.name != "contact_sheet.png":
            assert png.read_bytes() == (tmp_path / "there" / png.name).read_bytes(), png.name


def test_a_ray_run_prints_only_deepinsides_lines(tmp_path, photo_folder):
    """Ray's own start-up, planning and actor lines stay out of the terminal;
    ``out/ray-logs`` points to its session's logs."""
    import logging
    import subprocess
    import sys

    script = (
        "import logging, sys, ray\n"
        "ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,"
        f" log_to_driver=False, logging_level={logging.ERROR})\n"
        "from deepinside.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    run = [sys.executable, "-c", script, "batch", str(photo_folder), "--engine", "ray", "--out", str(out)]
    done = subprocess.run([*run, "--index", "jsonl"], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any(" photos explained" in line for line in lines), lines
    rays = ("core_worker", " INFO ", " WARNING ", "Ray ", "Dataset", "max_restarts")
    assert not [line for line in lines if any(word in line for word in rays)]
    assert (out / "ray-logs").is_symlink()
