"""The classmodel command, its files and figures."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from deepinside.errors import DeepInsideError
from deepinside.visualization import presets, visualize_class
from deepinside.visualization.early_stop import EarlyStop

from .conftest import HALF, _cli, linear_model


def test_command_line_writes_pictures_logs_and_a_contact_sheet(tmp_path, capsys):
    out = tmp_path / "out"
    code = _cli(
        ["classmodel", "goldfish", "812", "--steps", "2", "--size", "64", "--out", str(out), "--seed", "1"]
        + ["--early-stop", "1e-6"]  # every picture counts as converged: no retries
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class_index"] for c in summary["classes"]] == [1, 812]
    assert summary["preset"] == "default" and summary["seed"] == 1
    assert (out / "contact_sheet.png").exists() and (out / "0812-space-shuttle.png").exists()
    log = json.loads((out / "0001-goldfish.log.json").read_text())
    assert [s["step"] for s in log["steps"]] == [1, 2] and log["objective"] == "class_logit"
    with open(out / "0001-goldfish.log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]["score"]) == pytest.approx(log["steps"][0]["score"])
    assert "2 of 2 classes rendered" in capsys.readouterr().err
    assert not list(out.glob(".*")), "no temporary files left behind"


def test_command_line_early_stop_is_the_presets_unless_told(tmp_path):
    for flag, expected in (
        ([], presets.default().early_stop),
        (["--early-stop", "off"], None),
        (["--early-stop", "0.5"], dataclasses.replace(presets.default().early_stop, probability=0.5)),
    ):
        out = tmp_path / f"out{len(flag)}{flag[-1] if flag else ''}"
        argv = ["classmodel", "goldfish", "--steps", "1", "--size", "64", "--retries", "0", "--out", str(out)]
        # One step never converges; with an early stop it is a fast preview, not judged.
        assert _cli([*argv, *flag]) == (0 if expected else 1)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["not_converged"] == ([] if expected else ["goldfish"])
        assert summary["fast_preview"] is (expected is not None)
        assert summary["early_stop"] == (dataclasses.asdict(expected) if expected else None)
        assert summary["classes"][0]["steps_run"] == 1


def test_stop_rule_by_probability_keeps_the_presets_checks():
    default, paper = presets.default(), presets.paper()
    assert default.stop_rule(None) is default.early_stop and paper.stop_rule(True) == EarlyStop()
    assert default.stop_rule(False) is None and paper.stop_rule(0.9) == EarlyStop(probability=0.9)
    assert default.stop_rule(0.5) == dataclasses.replace(default.early_stop, probability=0.5)


def test_command_line_refuses_bad_input(tmp_path):
    for bad in (["--steps", "0"], ["--size", "0"], ["--early-stop", "2"], ["--early-stop", "soon"]):
        with pytest.raises(SystemExit) as e:
            _cli(["classmodel", "goldfish", *bad])
        assert e.value.code == 2
    with pytest.raises(DeepInsideError, match="use --all"):
        _cli(["classmodel", "--out", str(tmp_path)])
    with pytest.raises(DeepInsideError, match="not both"):
        _cli(["classmodel", "goldfish", "--all"])
    with pytest.raises(DeepInsideError, match="did you mean"):
        _cli(["classmodel", "goldfsh", "--out", str(tmp_path)])
    with pytest.raises(DeepInsideError, match="out of range"):
        _cli(["classmodel", "goldfish", "--size", "99999", "--out", str(tmp_path)])


def test_comparison_figure_and_contact_sheet_sizes():
    from deepinside.visualization.output import comparison_figure, contact_sheet

    a = visualize_class(linear_model(), [1, 2, 3], preset=presets.paper(steps=1), preprocessing=HALF, size=16)
    fig = comparison_figure([a, a], ["paper", "again"], cell=32)
    assert fig.mode == "RGB" and fig.width > 2 * 32 and fig.height > 3 * 32
    sheet = contact_sheet(a.images, ["one", "two", "three"], columns=2, cell=40)
    assert sheet.size == (2 * 46 + 6, 2 * (40 + 30 + 6) + 6)
    titled = contact_sheet(a.images, ["one", "two", "three"], columns=2, cell=40, title="a long title " * 4)
    assert titled.width == sheet.width and titled.height > sheet.height + 40  # wrapped, not cut off


def test_steps_below_the_early_stops_first_check_are_a_fast_preview_not_converged(tmp_path, capsys):
    """A high P_c after a few steps is the paper's fooling image: too early to judge."""
    out = tmp_path / "out"
    code = _cli(
        ["classmodel", "goldfish", "--steps", "2", "--size", "64", "--out", str(out), "--early-stop", "1e-6"]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fast_preview"] is True and summary["not_converged"] == []
    record = summary["classes"][0]
    assert record["converged"] is False and record["fast_preview"] is True and record["attempts"] == 1
    assert (
        "2 steps is a fast preview: the default preset first judges a picture at step 96"
        in capsys.readouterr().err
    )
