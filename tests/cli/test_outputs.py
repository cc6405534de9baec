"""What the commands write: one naming scheme, runs that share a folder, raw map formats."""

from __future__ import annotations

import json

import numpy as np

from deepinside.io.photos import IMAGE_SUFFIXES


def test_a_second_method_into_the_same_folder_keeps_the_first(cli, tmp_path, cat_jpg):
    out = tmp_path / "out"
    assert cli("saliency", cat_jpg, "--out", out)[0] == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli("saliency", cat_jpg, "--method", "grad-cam", "--out", out)[0] == 0
    for name, content in first.items():
        if name != "cat.json":
            assert (out / name).read_bytes() == content, f"{name} was overwritten"
    record = json.loads((out / "cat.json").read_text())
    assert record["methods"] == ["gradient", "grad-cam"]
    assert [(m["method"], m["class_index"]) for m in record["maps"]] == [("gradient", 285), ("grad-cam", 285)]
    named = {name for m in record["maps"] for name in m["files"].values()}
    assert named == {p.name for p in out.iterdir()} - {"cat.json"}  # the record lists every file
    assert "cat.grad-cam.0285-egyptian-cat.overlay.png" in named
    assert "cat.gradient.0285-egyptian-cat.raw.npy" in named


def test_the_same_method_again_replaces_its_maps_in_the_record(cli, tmp_path, cat_jpg):
    out = tmp_path / "out"
    cli("saliency", cat_jpg, "--out", out, "--method", "grad-cam")
    cli("saliency", cat_jpg, "--out", out, "--method", "grad-cam", "--top-k", "2")
    record = json.loads((out / "cat.json").read_text())
    assert [m["method"] for m in record["maps"]] == ["grad-cam", "grad-cam"]


def test_raw_maps_as_asked(cli, tmp_path, cat_jpg):
    maps = {}
    for raw in ("npy", "npz", "npz16", "none"):
        out = tmp_path / raw
        assert cli("saliency", cat_jpg, "--raw", raw, "--out", out)[0] == 0
        (entry,) = json.loads((out / "cat.json").read_text())["maps"]
        if raw == "none":
            assert "raw" not in entry["files"] and not list(out.glob("*.raw.*"))
            assert {"saliency", "overlay"} <= set(entry["files"])
            continue
        loaded = np.load(out / entry["files"]["raw"])
        maps[raw] = loaded if raw == "npy" else loaded["map"]
    assert maps["npy"].dtype == maps["npz"].dtype == np.float32 and maps["npz16"].dtype == np.float16
    assert maps["npy"].shape == maps["npz16"].shape == (300, 451)
    np.testing.assert_array_equal(maps["npz"], maps["npy"])
    top = float(maps["npy"].max())
    np.testing.assert_allclose(maps["npz16"].astype(np.float32), maps["npy"], rtol=1e-3, atol=1e-3 * top)


def test_localize_names_its_files_by_config_and_method(cli, tmp_path, cat_jpg):
    out = tmp_path / "out"
    assert cli("localize", cat_jpg, "--top-k", "1", "--config", "paper", "--out", out)[0] == 0
    assert (
        cli("localize", cat_jpg, "--top-k", "1", "--config", "paper", "--method", "grad-cam", "--out", out)[0]
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "cat.localize-paper-grad-cam.boxes.png",
        "cat.localize-paper-grad-cam.json",
        "cat.localize-paper-grad-cam.mask.png",
        "cat.localize-paper.boxes.png",
        "cat.localize-paper.json",
        "cat.localize-paper.mask.png",
    ]


def test_a_folder_scan_takes_only_image_files(cli, tmp_path, photos):
    folder = tmp_path / "project"
    folder.mkdir()
    photos["chelsea"].save(folder / "cat.JPG")
    for other in ("train.py", "train.pyc", "maps.npy", "meta.xml", "notes.txt"):
        (folder / other).write_bytes(b"not a photo")
    code, _, err = cli("saliency", folder, "--out", tmp_path / "out")
    assert code == 0 and "skipped" not in err and "1 of 1 images explained" in err
    assert ".jpg" in IMAGE_SUFFIXES


def test_pointing_game_reads_the_files_given_matched_by_name(cli, tmp_path, photos):
    """The annotations name photos where they were when the file was made;
    --images gives them where they are now."""
    ann = tmp_path / "boxes" / "ann.json"
    ann.parent.mkdir()
    ann.write_text(
        json.dumps(
            [
                {"image": "gone/cat.jpg", "class_index": 285, "boxes": [[60, 0, 420, 300]]},
                {"image": "gone/coffee.jpg", "class_index": 967, "boxes": [[40, 20, 380, 300]]},
            ]
        )
    )
    here = tmp_path / "here"
    here.mkdir()
    photos["chelsea"].save(here / "cat.jpg")
    photos["coffee"].save(here / "coffee.jpg")
    args = ("evaluate", "pointing-game", "--annotations", ann, "--methods", "grad-cam", "--json")
    code, out, err = cli(*args, tmp_path / "r.json", "--images", here)
    assert code == 0 and "skipped" not in err, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["rows"][0]["images"] == 2 and result["skipped"] == []
    code, _, err = cli(*args, tmp_path / "r2.json")  # without --images: paths relative to ann.json
    assert "boxes/gone/cat.jpg: no such file" in err
