"""``deepinside batch`` as a user runs it: exit codes and one-line errors."""

from __future__ import annotations

import json
import sys

from deepinside import batch
from deepinside.cli import main


def test_a_run_with_a_damaged_photo_exits_1_and_says_why(tmp_path, photo_folder, capsys):
    out = tmp_path / "out"
    code = main(["batch", str(photo_folder), "--out", str(out), "--index", "jsonl", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "4 photos explained, 0 already done, 1 failed of 5" in err and "damaged.jpg" in err
    assert main(["batch", str(photo_folder), "--out", str(out), "--index", "jsonl", "--workers", "0"]) == 0
    assert "0 photos explained, 5 already done, 0 failed" in capsys.readouterr().err
    assert len(batch.read_index(out)) == 5

    assert main(["batch", str(photo_folder), "--out", str(out), "--targets", "top5", "--index", "jsonl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--targets top1 there, top5 now" in err
    other = ["--methods", "gradient", "smoothgrad", "--samples", "4"]
    assert main(["batch", str(photo_folder), "--out", str(out), *other, "--index", "jsonl"]) == 2
    assert "--methods gradient there, gradient smoothgrad --samples 4 now" in capsys.readouterr().err


def test_wrong_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepinside: error:") and "no photos found" in err and err.count("\n") == 1
    assert main(["batch", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such folder or manifest" in capsys.readouterr().err


def test_ray_engine_without_ray_says_how_to_install(tmp_path, photo_folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as where it is not installed
    assert main(["batch", str(photo_folder), "--out", str(tmp_path / "out"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    hint = "--engine ray needs Ray: pip install 'deepinside[ray]' (or pip install 'ray[data]')"
    assert err == f"deepinside: error: {hint}\n"


def test_localize_alone_takes_the_measured_default_config(tmp_path, photo_folder, capsys):
    out = tmp_path / "out"
    args = ["batch", str(photo_folder), "--out", str(out), "--index", "jsonl", "--localize"]
    assert main([*args, "--workers", "0"]) == 1  # the damaged photo
    assert json.loads((out / "run.json").read_text())["localize"] == "default"
    rows = [r for r in batch.read_index(out) if not r["error"]]
    assert rows and all(len(r["boxes"]) == 1 for r in rows)
