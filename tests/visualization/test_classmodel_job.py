"""Class models as a job: files written batch by batch, a stopped run goes
on where it stopped, a folder never mixes two settings, batches in worker
processes give the pictures of one process, progress lines without a terminal."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

import deepinside
from deepinside.errors import DeepInsideError
from deepinside.visualization import presets
from deepinside.visualization.job import ClassModelJob, run_job

from .conftest import _cli

# Two steps cannot make a convincing picture: a tiny required probability
# counts every picture as converged, so that these tests see no retries.
QUICK = ["--steps", "2", "--size", "64", "--batch-size", "1", "--early-stop", "1e-6"]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.int16)


def test_a_stopped_run_goes_on_where_it_stopped(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real_render = ClassModelJob.render
    calls: list[list[int]] = []
    crashes = [1]

    def crash_on_second_batch(self, model, batch, progress=False):
        calls.append(list(batch))
        if len(calls) == 2 and crashes:
            crashes.pop()
            raise RuntimeError("the machine went away")
        return real_render(self, model, batch, progress)

    monkeypatch.setattr(ClassModelJob, "render", crash_on_second_batch)
    run = ["classmodel", "goldfish", "tabby", "812", *QUICK, "--workers", "1", "--out", str(out)]
    with pytest.raises(RuntimeError, match="went away"):
        _cli(run)
    assert (out / "0001-goldfish.log.json").exists() and not (out / "0281-tabby.png").exists()
    assert not (out / "summary.json").exists() and not list(out.glob(".*")), "nothing half-written"
    first = (out / "0001-goldfish.png").stat().st_mtime_ns

    calls.clear()
    assert _cli(run) == 0
    assert calls == [[281], [812]], "only the classes not done are rendered"
    assert (out / "0001-goldfish.png").stat().st_mtime_ns == first
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class_index"] for c in summary["classes"]] == [1, 281, 812] and summary["rendered_now"] == 2
    err = capsys.readouterr().err
    assert "3 of 3 classes rendered (2 now" in err and "1 were done before" in err


def test_a_folder_keeps_one_set_of_settings(tmp_path):
    out = tmp_path / "out"
    assert _cli(["classmodel", "goldfish", *QUICK, "--out", str(out)]) == 0
    with pytest.raises(
        DeepInsideError, match=r"other settings \(steps 2 there, 3 now\).*--out .*out-default-3-seed0"
    ):
        _cli(
            ["classmodel", "goldfish", *QUICK[:-2], "--early-stop", "1e-6", "--out", str(out), "--steps", "3"]
        )
    # More classes with the same settings join the folder.
    assert _cli(["classmodel", "tabby", *QUICK, "--out", str(out)]) == 0
    assert (out / "0001-goldfish.png").exists() and (out / "0281-tabby.png").exists()
    # A folder begun under another recipe of the same preset's name is another run.
    settings = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**settings, "recipe": "default: the recipe before"}))
    with pytest.raises(DeepInsideError, match=r"other settings \(recipe 'default: the recipe before' there"):
        _cli(["classmodel", "goldfish", *QUICK, "--out", str(out)])


def test_worker_processes_give_the_pictures_of_one_process(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _cli(["classmodel", "goldfish", "812", *QUICK, "--workers", "1", "--out", str(one)]) == 0
    assert _cli(["classmodel", "goldfish", "812", *QUICK, "--workers", "2", "--out", str(two)]) == 0
    for name in ("0001-goldfish.png", "0812-space-shuttle.png"):
        # One torch thread per worker instead of two: the same up to float round-off.
        assert np.abs(_pixels(one / name) - _pixels(two / name)).max() <= 2
    err = capsys.readouterr().err
    # No terminal under pytest: one line per batch says how far the run got.
    assert "classmodel: 1/2 classes" in err and "classmodel: 2/2 classes" in err and "left" in err


def test_job_refuses_what_it_cannot_run(tmp_path, model):
    job = ClassModelJob.for_model(model, [1, 1, 2], tmp_path, steps=1, size=32, batch_size=1)
    assert job.targets == (1, 2), "a class asked twice is rendered once"
    with pytest.raises(DeepInsideError, match="not done yet"):
        job.finish()
    with pytest.raises(DeepInsideError, match="model_factory"):
        run_job(job, model, workers=2)
    with pytest.raises(DeepInsideError, match="out of range"):
        ClassModelJob.for_model(model, [1], tmp_path / "x", size=99999)
    with pytest.raises(DeepInsideError, match="steps must be"):
        ClassModelJob.for_model(model, [1], tmp_path / "x", steps=0)
    with pytest.raises(DeepInsideError, match="by name"):  # its name would not say it was changed
        ClassModelJob.for_model(model, [1], tmp_path / "x", preset=presets.default(steps=5))  # type: ignore[arg-type]
    for bad, message in (
        (dict(objective="loss"), "unknown objective"),
        (dict(preset="pretty"), "unknown preset"),
        (dict(seed=True), "seed must be"),
        (dict(size=(0, 64)), "out of range"),
    ):
        with pytest.raises(DeepInsideError, match=message):
            ClassModelJob(tmp_path / "x", (1,), ("goldfish",), "m", **bad).start()
    assert not (tmp_path / "x").exists(), "a job refused never claims its folder"


def test_a_folder_refuses_the_same_model_name_with_other_weights(tmp_path, model):
    job = ClassModelJob.for_model(model, [1], tmp_path, steps=1, size=32)
    job.start()
    retrained = deepinside.load_model()
    with torch.no_grad():
        next(retrained.parameters()).add_(1e-3)
    assert retrained.name == model.name and retrained.digest() != model.digest()
    with pytest.raises(DeepInsideError, match="model_digest"):
        ClassModelJob.for_model(retrained, [1], tmp_path, steps=1, size=32).start()
    ClassModelJob.for_model(
        deepinside.load_model(), [1], tmp_path, steps=1, size=32
    ).start()  # the same model


def test_the_folder_named_dot_gets_a_usable_suggestion(tmp_path, monkeypatch, model):
    monkeypatch.chdir(tmp_path)
    ClassModelJob.for_model(model, [1], ".", steps=1, size=32).start()
    with pytest.raises(DeepInsideError, match=f"--out .*{tmp_path.name}-default-2-seed0"):
        ClassModelJob.for_model(model, [1], ".", steps=2, size=32).start()


def test_start_removes_stale_temporary_files_but_not_writes_in_progress(tmp_path, model):
    from deepinside.io.files import TEMPORARY_SUFFIX

    job = ClassModelJob.for_model(model, [1], tmp_path, steps=1, size=32)
    job.start()
    stale, fresh = tmp_path / f".old.png.x{TEMPORARY_SUFFIX}", tmp_path / f".new.png.y{TEMPORARY_SUFFIX}"
    stale.write_bytes(b"cut short by a kill an hour ago")
    fresh.write_bytes(b"another process is writing this")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    job.start()
    assert not stale.exists() and fresh.exists()
