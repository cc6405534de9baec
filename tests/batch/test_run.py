"""deepinside.batch.run on the local engine: what it writes, what it skips on
a rerun, and what it refuses."""

from __future__ import annotations

import errno
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import deepinside.explain
from deepinside import batch
from deepinside.batch import stages
from deepinside.errors import DeepInsideError

from .conftest import without_timings

PHOTOS = ["astronaut.jpg", "chelsea.jpg", "damaged.jpg", "more/coffee.jpg", "more/rocket.jpg"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, photo_folder, model) -> Path:
    out = tmp_path_factory.mktemp("out")
    settings = batch.BatchSettings(targets="top2", localize="paper", float16=True)
    batch.run(photo_folder, out, model, settings, batch_size=3, workers=0)
    return out


def test_each_photo_is_one_row_and_a_damaged_one_a_failure(first_run, photo_folder, model):
    rows = {r["path"]: r for r in batch.read_index(first_run)}
    assert sorted(rows) == PHOTOS  # the text file is not a photo
    assert "truncated" in rows["damaged.jpg"]["error"]
    cat = rows["chelsea.jpg"]
    assert cat["error"] is None and (cat["width"], cat["height"]) == (160, 120)
    assert len(cat["sha256"]) == 64 and cat["bytes"] == (photo_folder / "chelsea.jpg").stat().st_size
    top = [p["class_index"] for p in cat["predictions"]]
    assert model.classes[top[0]].label in ("tabby", "tiger cat", "Egyptian cat")
    assert len(top) == 5  # the top 5 predictions whatever the classes mapped
    assert [m["class_index"] for m in cat["maps"]] == top[:2]  # top2: two maps of gradient
    assert [b["class_index"] for b in cat["boxes"]] == top[:2]
    x0, y0, x1, y1 = (cat["boxes"][0][k] for k in ("x0", "y0", "x1", "y1"))
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120


def test_maps_file_holds_what_the_index_says(first_run):
    row = next(r for r in batch.read_index(first_run) if r["path"] == "more/coffee.jpg")
    with np.load(first_run / "maps" / row["maps_file"]) as npz:
        maps, classes = npz["gradient"], npz["classes"]
        assert maps.dtype == np.float16 and maps.shape == (2, 224, 224)
        assert npz["input_box"].shape == (4,)
    assert classes.tolist() == [m["class_index"] for m in row["maps"]]
    # Statistics come from the float32 maps, the file holds them rounded to float16.
    assert np.allclose(maps.max(axis=(1, 2)), [m["max"] for m in row["maps"]], rtol=2e-3)


def test_maps_files_are_stored_not_deflated(first_run):
    # Deflating a map saves a tenth of its bytes at a fifth of the model's time per photo.
    for npz in (first_run / "maps").rglob("*.npz"):
        with zipfile.ZipFile(npz) as archive:
            assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


def test_compress_deflates_the_same_maps(tmp_path, photo_folder, model):
    stored, deflated = tmp_path / "stored", tmp_path / "deflated"
    for out, compress in ((stored, False), (deflated, True)):
        settings = batch.BatchSettings(methods=("grad-cam",), compress=compress, index_format="jsonl")
        batch.run(photo_folder, out, model, settings, batch_size=4, workers=0)
    files = sorted(p.relative_to(stored) for p in (stored / "maps").rglob("*.npz"))
    assert files
    for name in files:
        with zipfile.ZipFile(deflated / name) as archive:
            assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        assert (deflated / name).stat().st_size < (stored / name).stat().st_size
        with np.load(stored / name) as a, np.load(deflated / name) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_rerun_skips_everything_and_rewrites_nothing(first_run, photo_folder, model):
    shards = batch.shard_paths(first_run)
    settings = batch.BatchSettings(targets="top2", localize="paper", float16=True)
    summary = batch.run(photo_folder, first_run, model, settings, batch_size=3, workers=0)
    assert (summary.total, summary.skipped, summary.done, summary.failed) == (5, 5, 0, [])
    assert batch.shard_paths(first_run) == shards


def test_other_settings_are_refused_naming_the_difference(first_run, photo_folder, model):
    with pytest.raises(DeepInsideError, match=r"--targets top2 there, top1 now.*--overwrite"):
        batch.run(photo_folder, first_run, model, batch.BatchSettings(localize="paper", float16=True))


def test_decoding_threads_give_the_same_results(tmp_path, photo_folder, model):
    here, there = tmp_path / "here", tmp_path / "there"
    settings = batch.BatchSettings(index_format="jsonl")
    batch.run(photo_folder, here, model, settings, batch_size=2, workers=0)
    batch.run(photo_folder, there, model, settings, batch_size=2, workers=2)
    assert without_timings(batch.read_index(here)) == without_timings(batch.read_index(there))
    for npz in (here / "maps").rglob("*.npz"):
        assert npz.read_bytes() == (there / npz.relative_to(here)).read_bytes()


def test_overwrite_starts_the_folder_again(tmp_path, photo_folder, model):
    out = tmp_path / "out"
    batch.run(photo_folder, out, model, batch.BatchSettings(index_format="jsonl"), workers=0)
    settings = batch.BatchSettings(index_format="jsonl", pictures=True)
    batch.run(photo_folder, out, model, settings, workers=0, overwrite=True)
    assert json.loads((out / "run.json").read_text())["pictures"] is True
    assert len(batch.read_index(out)) == 5
    assert len(list((out / "pictures").rglob("*.gradient.*.png"))) == 4


def test_a_full_disk_stops_the_run_and_keeps_the_finished_shards(tmp_path, photo_folder, model, monkeypatch):
    out = tmp_path / "out"
    write_maps, calls = stages.write_maps, []

    def fills_up(path, *args):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_maps(path, *args)

    monkeypatch.setattr(stages, "write_maps", fills_up)
    settings = batch.BatchSettings(index_format="jsonl")
    with pytest.raises(OSError, match="No space"):
        batch.run(photo_folder, out, model, settings, batch_size=1, workers=0, writers=1)
    kept = batch.read_index(out)  # every shard there reads whole
    assert 1 <= len(kept) <= 3 and not list(out.rglob(".*.tmp"))
    monkeypatch.setattr(stages, "write_maps", write_maps)
    summary = batch.run(photo_folder, out, model, settings, batch_size=1, workers=0)
    assert summary.skipped == len(kept) and summary.done + len(summary.failed) == 5 - len(kept)
    assert sorted(r["path"] for r in batch.read_index(out)) == PHOTOS


def test_a_folder_without_photos_is_refused(tmp_path, model):
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(DeepInsideError, match="no photos found"):
        batch.run(tmp_path, tmp_path / "out", model)
    assert not (tmp_path / "out").exists()


def test_a_manifest_names_photos_relative_to_itself_with_their_classes(tmp_path, photo_folder, model):
    manifest = photo_folder / "list.csv"
    manifest.write_text("path,class\nchelsea.jpg,tabby\nmore/coffee.jpg,\nchelsea.jpg,tabby\n")
    out = tmp_path / "out"
    summary = batch.run(manifest, out, model, batch.BatchSettings(index_format="jsonl"), workers=0)
    assert summary.total == 2  # a path listed twice is one photo
    rows = {r["path"]: r for r in batch.read_index(out)}
    assert rows["chelsea.jpg"]["true_class"] == "tabby" and rows["more/coffee.jpg"]["true_class"] is None


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "path,class\nchelsea.jpg,tabby\nnowhere.jpg,tabby\n", "row 3: nowhere.jpg: no such file"),
        ("b.csv", "path,class\nchelsea.jpg,tabby,extra\n", "row 2 has 3 fields"),
        ("c.csv", "file\nchelsea.jpg\n", "row 1 must be a header naming a 'path' column"),
        ("d.jsonl", '{"path": "chelsea.jpg"}\n{"path": \n', "row 2 is not JSON"),
        ("e.jsonl", '{"path": "chelsea.jpg"}\n\n["chelsea.jpg"]\n', 'row 3 needs a "path" string'),
        # JSON, but with a number longer than Python reads as an int: a ValueError, not a JSONDecodeError.
        ("g.jsonl", '{"path": "chelsea.jpg", "n": ' + "1" * 5000 + "}\n", r"row 1 is not JSON \(Exceeds"),
        ("f.csv", "path,class\nchelsea.jpg,no-such-class-at-all\n", "row 2: "),
    ],
)
def test_a_bad_manifest_is_refused_with_its_row(tmp_path, photo_folder, model, name, text, message):
    manifest = photo_folder / name
    manifest.write_text(text)
    try:
        with pytest.raises(DeepInsideError, match=message):
            batch.run(manifest, tmp_path / "out", model, batch.BatchSettings(index_format="jsonl"))
    finally:
        manifest.unlink()


def test_unknown_settings_are_refused():
    with pytest.raises(DeepInsideError, match="top1, top5"):
        batch.BatchSettings(targets="best")
    with pytest.raises(DeepInsideError, match="unknown method"):
        batch.BatchSettings(methods=("gradient", "magic"))
    with pytest.raises(DeepInsideError, match="parquet or jsonl"):
        batch.BatchSettings(index_format="csv")


def test_the_library_loop_reads_ahead_with_the_same_results(photo_folder, model):
    files = sorted(photo_folder.glob("*.jpg"))  # two photos and the damaged file
    here = deepinside.explain.explain_photos(model, files, batch_size=2, workers=0)
    there = deepinside.explain.explain_photos(model, files, batch_size=2, workers=2)
    for a, b in zip(here, there, strict=True):
        assert type(a) is type(b) and a.source == b.source
        if hasattr(a, "maps"):
            assert a.predictions == b.predictions and np.array_equal(a.maps[0].on_input, b.maps[0].on_input)
