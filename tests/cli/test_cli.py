"""The command line as a user runs it: outputs, one-line errors, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepinside.cli import main


@pytest.fixture
def photo_dir(tmp_path, photos) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    photos["chelsea"].save(d / "cat.jpg")
    photos["coffee"].convert("L").save(d / "coffee_grey.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / "notes.txt").write_text("not an image")
    return d


def _run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_of_mixed_files(tmp_path, photo_dir, capsys):
    out_dir = tmp_path / "out"
    code, _, err = _run(["saliency", photo_dir, "--out", out_dir], capsys)
    assert code == 1  # some files failed
    lines = [line for line in err.splitlines() if line.startswith("deepinside:")]
    # a folder scan takes image files only: notes.txt is not tried
    assert len(lines) == 1 and "broken.jpg" in lines[0]
    assert "Traceback" not in err
    record = json.loads((out_dir / "cat.json").read_text())
    assert record["width"] == 451 and record["height"] == 300 and record["model"] == "efficientnet_lite0"
    assert [p["class_index"] for p in record["predictions"]][:1] == [285]
    assert set(record["predictions"][0]) == {"class_index", "wnid", "label", "logit", "probability"}
    raw = np.load(out_dir / record["maps"][0]["files"]["raw"])
    assert raw.dtype == np.float32 and raw.shape == (300, 451)
    assert Image.open(out_dir / record["maps"][0]["files"]["saliency"]).size == (451, 300)
    assert (out_dir / "coffee_grey.json").exists()
    assert not list(out_dir.glob(".*")), "no temporary files left behind"


def test_named_targets_and_top_k(tmp_path, photo_dir, capsys):
    out_dir = tmp_path / "out"
    code, _, _ = _run(
        ["saliency", photo_dir / "cat.jpg", "--target", "tabby", "--target", "n02124075", "--out", out_dir],
        capsys,
    )
    assert code == 0
    maps = json.loads((out_dir / "cat.json").read_text())["maps"]
    assert [m["class_index"] for m in maps] == [281, 285]
    code, _, _ = _run(["saliency", photo_dir / "cat.jpg", "--top-k", "3", "--out", tmp_path / "k"], capsys)
    record = json.loads((tmp_path / "k" / "cat.json").read_text())
    assert code == 0 and len(record["maps"]) == 3 and len(record["predictions"]) == 5
    assert [m["class_index"] for m in record["maps"]] == [p["class_index"] for p in record["predictions"][:3]]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "tabbby"], "unknown class 'tabbby'; did you mean 'tabby'"),
        (["--top-k", "0"], "--top-k must be between 1 and 1000"),
        (["--top-k", "5000"], "--top-k must be between 1 and 1000"),
        (["--model", "nope"], "neither a built-in name"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(tmp_path, photo_dir, capsys, extra, message):
    out_dir = tmp_path / "out"
    code, _, err = _run(["saliency", photo_dir / "cat.jpg", "--out", out_dir, *extra], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"deepinside: error: {err.strip().split('error: ', 1)[1]}"]
    assert message in err
    assert not out_dir.exists()


def test_missing_file_alone(tmp_path, capsys):
    code, _, err = _run(["saliency", tmp_path / "nope.jpg", "--out", tmp_path / "o"], capsys)
    assert code == 1 and "nope.jpg: no such file" in err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _run(["saliency", tmp_path / "empty"], capsys)
    assert code == 2 and "no files found" in err


def test_classes_search(capsys):
    code, out, _ = _run(["classes", "tabby"], capsys)
    assert code == 0 and out.startswith(" 281  n02123045  tabby, tabby cat")


def test_demo_writes_the_figure(tmp_path, capsys):
    code, _, _ = _run(["demo", "--out", tmp_path, "--parts", "saliency"], capsys)
    assert code == 0
    figure = Image.open(tmp_path / "saliency_figure.png")
    assert figure.width > 600 and figure.height > 600
    assert (
        json.loads((tmp_path / "saliency" / "chelsea.json").read_text())["predictions"][0]["class_index"]
        == 285
    )


def test_installed_command_prints_no_traceback(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepinside",
            "saliency",
            str(tmp_path / "x.jpg"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "x.jpg: empty file" in run.stderr and "Traceback" not in run.stderr


def test_saliency_with_another_method(tmp_path, photo_dir, capsys):
    out_dir = tmp_path / "out"
    code, _, _ = _run(["saliency", photo_dir / "cat.jpg", "--method", "grad-cam", "--out", out_dir], capsys)
    record = json.loads((out_dir / "cat.json").read_text())
    assert code == 0 and record["methods"] == ["grad-cam"] and record["maps"][0]["method"] == "grad-cam"
    assert np.load(out_dir / record["maps"][0]["files"]["raw"]).shape == (300, 451)


@pytest.mark.parametrize("extra", [["--method", "nope"], ["--samples", "0"], ["--ig-steps", "-3"]])
def test_bad_method_options_exit_2(photo_dir, capsys, extra):
    with pytest.raises(SystemExit) as stop:
        main(["saliency", str(photo_dir / "cat.jpg"), *extra])
    assert stop.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.fixture
def annotated(tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    photos["coffee"].save(tmp_path / "coffee.jpg")
    entries = [
        {"image": "cat.jpg", "class_index": 285, "width": 451, "height": 300, "boxes": [[60, 0, 420, 300]]},
        {
            "image": "coffee.jpg",
            "class_index": 967,
            "width": 400,
            "height": 400,
            "boxes": [[40, 20, 380, 300]],
        },
    ]
    (tmp_path / "ann.json").write_text(json.dumps(entries))
    return tmp_path / "ann.json"


def test_evaluate_faithfulness_and_pointing(tmp_path, annotated, capsys):
    code, out, _ = _run(
        [
            "evaluate",
            "faithfulness",
            "--annotations",
            annotated,
            "--methods",
            "gradient",
            "grad-cam",
            "--steps",
            "4",
            "--json",
            tmp_path / "f.json",
        ],
        capsys,
    )
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["gradient", "grad-cam", "random"]
    rows = json.loads((tmp_path / "f.json").read_text())["rows"]
    assert all(
        0 <= r["deletion_auc"] <= 1 and 0 <= r["insertion_auc"] <= 1 and r["images"] == 2 for r in rows
    )
    code, out, _ = _run(
        ["evaluate", "pointing-game", "--annotations", annotated, "--methods", "grad-cam"], capsys
    )
    assert code == 0 and "grad-cam" in out and "centre" in out


def test_localize_and_evaluate_take_the_multiscale_config(tmp_path, annotated, capsys):
    out = tmp_path / "out"
    code, _, _ = _run(
        ["localize", tmp_path / "cat.jpg", "--top-k", "2", "--config", "multiscale", "--out", out], capsys
    )
    assert code == 0
    assert len(json.loads((out / "cat.localize-multiscale.json").read_text())["boxes"]) == 2
    code, out, _ = _run(
        ["evaluate", "localization", "--annotations", annotated, "--config", "multiscale"], capsys
    )
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:2]] == ["multiscale"]


def test_evaluate_needs_boxes_for_the_pointing_game(photo_dir, capsys):
    code, _, err = _run(["evaluate", "pointing-game", "--images", photo_dir / "cat.jpg"], capsys)
    assert code == 2 and "needs object boxes" in err


def test_evaluate_with_images_that_do_not_match_the_annotations(annotated, photo_dir, capsys):
    code, _, err = _run(
        ["evaluate", "faithfulness", "--annotations", annotated, "--images", photo_dir / "coffee_grey.png"],
        capsys,
    )
    assert code == 2 and "coffee_grey.png: has no entry" in err


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, photo_dir, capsys):
    (tmp_path / "taken").write_text("a file where the output folder should go")
    code, _, err = _run(["saliency", photo_dir / "cat.jpg", "--out", tmp_path / "taken"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("deepinside: error: ") and "--out" in err


def test_evaluate_leaves_out_unreadable_photos_and_goes_on(tmp_path, photo_dir, capsys):
    code, out, err = _run(
        [
            "evaluate",
            "faithfulness",
            "--images",
            photo_dir,
            "--methods",
            "gradient",
            "--steps",
            "2",
            "--json",
            tmp_path / "f.json",
        ],
        capsys,
    )
    assert code == 1 and "skipped" in err and "broken.jpg" in err and "1 of 3 photos could not be read" in err
    result = json.loads((tmp_path / "f.json").read_text())
    assert result["rows"][0]["images"] == 2 and len(result["skipped"]) == 1


@pytest.mark.parametrize(
    ("device", "says"),
    [
        ("cuda:banana", "is not a device"),
        ("xpu", "unsupported device type"),
        pytest.param(
            "cuda",
            "sees no CUDA GPU",
            marks=pytest.mark.skipif(
                __import__("torch").cuda.is_available(), reason="this machine has a GPU"
            ),
        ),
    ],
)
def test_device_this_machine_lacks_is_refused_in_one_line(photo_dir, capsys, device, says):
    for command in (["saliency", str(photo_dir / "cat.jpg")], ["classmodel", "goldfish"], ["demo"]):
        with pytest.raises(SystemExit) as stop:
            main([*command, "--device", device])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and says in err and "Traceback" not in err


def test_device_index_beyond_the_gpus_is_refused(monkeypatch):
    import argparse

    import torch

    from deepinside.cli._common import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(argparse.ArgumentTypeError, match="no such GPU.*cuda:0 to cuda:0"):
        device("cuda:1")


def test_explicit_cpu_device_and_one_worker_on_a_gpu(tmp_path, capsys):
    import torch

    from deepinside.cli.classmodel_cmd import _default_workers

    code, _, err = _run(
        [
            "classmodel",
            "goldfish",
            "--device",
            "cpu",
            "--steps",
            "2",
            "--early-stop",
            "1e-6",
            "--out",
            tmp_path / "cm",
        ],
        capsys,
    )
    assert code == 0 and (tmp_path / "cm" / "0001-goldfish.png").is_file(), err
    assert _default_workers(torch.device("cuda")) == 1
    assert _default_workers(torch.device("cpu")) == torch.get_num_threads()


def test_deterministic_maps_from_the_command_line(tmp_path, photo_dir, capsys):
    from deepinside.cli import build_parser

    cat = photo_dir / "cat.jpg"
    for flag in ([], ["--deterministic"]):
        code, _, _ = _run(["saliency", cat, "--out", tmp_path / str(len(flag)), *flag], capsys)
        assert code == 0
    # On the CPU the maps are repeatable anyway: the option changes nothing there.
    (plain,), (steady,) = (list((tmp_path / d).glob("cat.*.npy")) for d in ("0", "1"))
    assert np.array_equal(np.load(plain), np.load(steady))
    for command in (["localize", cat], ["evaluate", "faithfulness", "--images", cat]):
        assert build_parser().parse_args([*map(str, command), "--deterministic"]).deterministic
