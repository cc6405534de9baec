"""The page's work without a browser: uploads, limits, class choice, the
streamed and stoppable class visualisation, comparison scores."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import deepinside
from deepinside.attribution import METHODS
from deepinside.errors import DeepInsideError
from deepinside.evaluation import deletion_insertion
from deepinside.io.files import TEMPORARY_SUFFIX
from deepinside.web import classmodel, compare, explain
from deepinside.web.limits import Limits
from deepinside.web.options import controls_for, method_settings
from deepinside.web.session import TOP1, Server
from deepinside.web.shown import PictureFiles
from deepinside.web.uploads import read_upload


@pytest.fixture
def server(model: deepinside.Classifier, tmp_path: Path) -> Server:
    return Server(
        model, Limits(max_upload_mb=0.5, max_pixels=1_000_000, max_steps=50, max_size=128), tmp_path
    )


def test_uploads_go_through_the_cli_reader_with_the_user_s_file_name(server: Server, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(DeepInsideError, match=r"^notes\.jpg: not an image that can be read"):
        read_upload(text, server.limits)
    big = tmp_path / "big.png"
    Image.new("RGB", (1100, 1000)).save(big)
    with pytest.raises(DeepInsideError, match=r"^big\.png: 1100x1000 is 1 megapixels, over the limit"):
        read_upload(big, server.limits)
    heavy = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (500, 500, 3), dtype=np.uint8)).save(heavy)
    with pytest.raises(DeepInsideError, match=r"^noise\.png: .* over this server's upload limit of 0.5 MB"):
        read_upload(heavy, server.limits)
    script = tmp_path / "run.sh"
    script.write_text("echo")
    with pytest.raises(DeepInsideError, match="not an image type"):
        read_upload(script, server.limits)


def test_classes_are_chosen_by_choice_index_wordnet_id_or_name(server: Server) -> None:
    assert server.resolve_class(TOP1) is None and server.resolve_class("") is None
    assert server.resolve_class("281 · tabby, tabby cat · n02123045") == 281
    assert (
        server.resolve_class("n02123045")
        == server.resolve_class("tabby")
        == server.resolve_class("281")
        == 281
    )
    with pytest.raises(DeepInsideError, match="unknown class 'tabbby'"):
        server.resolve_class("tabbby")


def test_explain_streams_one_map_per_method_then_the_box(
    server: Server, photos: dict[str, Image.Image], model: deepinside.Classifier
) -> None:
    photo = photos["chelsea"]
    methods = explain.check_methods(["gradient", "gradient-x-input"], server)
    steps = [(len(d.maps), d.boxes is not None) for d in explain.explain(server, photo, 281, methods)]
    assert steps == [(1, False), (2, False), (2, True)]
    done = list(explain.explain(server, photo, 281, methods[:1]))[-1]
    inputs, placements = model.prepare([photo])
    expected = placements[0].to_photo(deepinside.saliency(model, inputs, 281)[0]).numpy()
    (npy,) = [f for f in done.files if f.endswith(".npy")]
    np.testing.assert_allclose(np.load(npy), expected, rtol=1e-5, atol=1e-8)
    assert Path(npy).is_relative_to(server.workdir)


def test_method_options_are_capped(server: Server) -> None:
    controls = controls_for([METHODS["smoothgrad"]], Limits(max_samples=100))
    values = [c.default for c in controls]
    (samples,) = [k for k, c in enumerate(controls) if c.field == "samples"]
    values[samples] = 10_000
    with pytest.raises(
        DeepInsideError, match=r"^smoothgrad: noisy copies must be from 1 to 100 on this server"
    ):
        method_settings(controls, values)
    values[samples] = 7
    (chosen,) = explain.check_methods(["smoothgrad"], server, method_settings(controls, values))
    assert chosen.samples == 7  # type: ignore[attr-defined]
    with pytest.raises(DeepInsideError, match="choose at least one method"):
        explain.check_methods([], server)


def test_options_left_to_their_defaults_keep_to_the_server_s_cap(
    model: deepinside.Classifier, tmp_path: Path
) -> None:
    server = Server(model, Limits(max_samples=5), tmp_path)
    # Compare has no option controls: its methods run at their defaults, capped.
    smoothgrad, ig = explain.check_methods(["smoothgrad", "integrated-gradients"], server)
    assert (smoothgrad.samples, ig.steps) == (5, 5)  # type: ignore[attr-defined]
    (chosen,) = explain.check_methods(["smoothgrad"], server, {"smoothgrad": {"samples": 3}})
    assert chosen.samples == 3  # type: ignore[attr-defined]
    # The Explain tab's slider starts within the cap too.
    (samples,) = [c for c in controls_for([METHODS["smoothgrad"]], server.limits) if c.field == "samples"]
    assert samples.default == 5 and samples.high == 5


def test_changing_the_opacity_leaves_no_files_behind(
    model: deepinside.Classifier, tmp_path: Path, cat_photo: Path
) -> None:
    from deepinside.web.app import build_app

    server = Server(model, Limits(), tmp_path)
    app = build_app(server)
    (restyle,) = [f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "restyle"]
    photo = deepinside.io.load_photo(cat_photo)
    *_, done = explain.explain(
        server, photo, None, explain.check_methods(["gradient"], server), "max-abs", "paper"
    )
    shutil.rmtree(done.folder)  # as the run's handler does when it ends
    (overlays,) = list(restyle(done, 0.3))
    assert Path(overlays[0][0]).name.endswith(".png")
    assert not done.folder.exists() and not any(server.workdir.iterdir())


@pytest.mark.parametrize(
    ("steps", "size", "message"),
    [(10**6, 64, "steps must be a whole number from 1 to 50"), (5, 4096, "size must be"), (2.5, 64, "steps")],
)
def test_absurd_class_jobs_are_refused(server: Server, steps: float, size: float, message: str) -> None:
    with pytest.raises(DeepInsideError, match=message):
        classmodel.check_job(server, [1], "paper", 0, steps, size)


def test_class_job_streams_steps_and_stops_when_asked(server: Server) -> None:
    jobs = classmodel.ClassJobs()
    job = classmodel.check_job(server, [1], "paper", 0, 50, 64)
    seen = []
    for view in jobs.run(server, "me", job):
        seen.append(view.status)
        if view.status.startswith("step 3/"):
            assert jobs.stop("me")
    assert seen[-1].startswith("stopped at step") and int(seen[-1].split()[3]) < 50
    assert any("S_c" in s for s in seen)
    assert not jobs.stop("me")  # the job is gone and its worker freed


def test_a_stopped_job_offers_the_files_a_finished_one_does(server: Server) -> None:
    """After Stop: the class's picture as far as it got, its logs, the contact
    sheet and the summary, named as a finished run names them."""
    jobs = classmodel.ClassJobs()
    finished = list(jobs.run(server, "me", classmodel.check_job(server, [1, 2], "paper", 0, 2, 32)))[-1]
    stopped_job = classmodel.check_job(server, [1, 2], "paper", 0, 50, 32)
    for view in jobs.run(server, "me", stopped_job):
        if view.status.startswith("step 4/"):
            jobs.stop("me")
    at = int(view.status.split()[3])
    assert view.status.startswith("stopped at step") and 4 <= at < 50
    names = sorted(Path(f).name for f in view.files)
    assert names == sorted(Path(f).name for f in finished.files)
    assert "0001-goldfish.png" in names and "summary.json" in names
    folder = Path(view.files[0]).parent
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["stopped_at_step"] == at
    assert [c["stopped"] for c in summary["classes"]] == [f"stopped by the user at step {at}"] * 2
    log = json.loads((folder / "0001-goldfish.log.json").read_text())
    assert [row["step"] for row in log["steps"]] == list(range(1, at + 1))
    assert all(row["score"] is not None for row in log["steps"])
    with Image.open(folder / "0001-goldfish.png") as picture:
        assert picture.size == (32, 32)
    assert [Path(p).name for p, _ in view.pictures or []] == [
        "0001-goldfish.png",
        "0002-great-white-shark.png",
    ]


def test_class_job_pictures_are_new_files_never_rewritten(server: Server) -> None:
    """A picture the page may be fetching is never written again: each
    snapshot is a file of its own, written whole (temporary name, then renamed)."""
    jobs = classmodel.ClassJobs()
    job = classmodel.check_job(server, [1], "paper", 0, 30, 32)
    first_seen: dict[str, tuple[int, int, int]] = {}
    shown = 0
    for view in jobs.run(server, "me", job):
        for path, _ in view.pictures or []:
            stat = os.stat(path)
            assert first_seen.setdefault(path, (stat.st_ino, stat.st_mtime_ns, stat.st_size)) == (
                stat.st_ino,
                stat.st_mtime_ns,
                stat.st_size,
            )
        shown += view.pictures is not None
    assert len(first_seen) >= 2 and shown >= 2
    for path, before in first_seen.items():
        stat = os.stat(path)
        assert (stat.st_ino, stat.st_mtime_ns, stat.st_size) == before, path
    assert not [p for p in server.workdir.rglob("*") if p.name.endswith(TEMPORARY_SUFFIX)]


def test_shown_pictures_are_renamed_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        renamed.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    files = PictureFiles(tmp_path)
    a = files.new("tabby", Image.new("RGB", (8, 8)))
    b = files.new("tabby", Image.new("RGB", (8, 8)))
    assert a != b and [dst for _, dst in renamed] == [Path(a).name, Path(b).name]
    assert all(src.startswith(".") and src.endswith(TEMPORARY_SUFFIX) for src, _ in renamed)
    same = files.file("key", "map", lambda: Image.new("RGB", (8, 8)))
    assert files.file("key", "map", lambda: Image.new("RGB", (9, 9))) == same  # written once


def test_one_class_job_per_session_at_a_time(server: Server) -> None:
    jobs = classmodel.ClassJobs()
    job = classmodel.check_job(server, [1], "paper", 0, 3, 32)
    first = jobs.run(server, "me", job)
    next(first)
    with pytest.raises(DeepInsideError, match="already running"):
        next(jobs.run(server, "me", job))
    finished = list(first)[-1]
    assert finished.finished and finished.status.startswith("done") and finished.files
    assert threading.active_count() < 50


def test_boxes_typed_in_are_checked() -> None:
    assert compare.parse_boxes("10 20 30 40\n1,2,3,4") == ((10, 20, 30, 40), (1, 2, 3, 4))
    assert compare.parse_boxes("  ") == ()
    with pytest.raises(DeepInsideError, match="four numbers"):
        compare.parse_boxes("10 20 30")
    with pytest.raises(DeepInsideError, match="x0 < x1"):
        compare.parse_boxes("30 20 10 40")
    # A box from another photo's scale is refused, not scored against the wrong place.
    compare.check_inside(((0, 0, 227, 227),), (227, 227))
    with pytest.raises(DeepInsideError, match="box 0 0 500 500 reaches outside the 227x227 photo"):
        compare.check_inside(compare.parse_boxes("0 0 500 500"), (227, 227))


def test_predictions_name_the_class_index_as_such() -> None:
    from deepinside.models import Prediction
    from deepinside.web.session import prediction_label

    label = prediction_label(Prediction(90, "n01820546", "lorikeet", 12.0, 0.9))
    assert label == "lorikeet · class 90"


def test_compare_scores_each_method_with_the_evaluation_functions(
    server: Server, photos: dict[str, Image.Image]
) -> None:
    photo = photos["chelsea"]
    photo.filename = "chelsea"  # type: ignore[attr-defined]
    methods = explain.check_methods(["gradient", "grad-cam"], server)
    whole = (0.0, 0.0, float(photo.width), float(photo.height))
    scored = compare.compare(server.model, [photo], methods, 281, {"chelsea": (whole,)}, steps=10)
    assert [s.method for s in scored] == ["gradient", "grad-cam"]
    assert all(s.pointing_hit is True for s in scored)  # the whole photo is the box
    inputs, _ = server.model.prepare([photo])
    target = torch.tensor([281])
    for s in scored:
        maps = deepinside.saliency(server.model, inputs, target, s.method)
        curves = deletion_insertion(server.model, inputs, maps, target, steps=10)
        assert s.deletion_auc == pytest.approx(float(curves.deletion_auc[0]), abs=1e-6)
        assert s.insertion_auc == pytest.approx(float(curves.insertion_auc[0]), abs=1e-6)
