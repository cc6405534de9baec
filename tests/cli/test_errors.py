"""A wrong option or a path that is not there: one line that says so, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["saliency", "x.jpg", "--method", "foo"], "argument --methods/--method: invalid choice: 'foo'"),
        (["saliency", "x.jpg", "--nope"], "unrecognized arguments: --nope"),
        (["localize", "x.jpg", "--config", "nope"], "argument --config: invalid choice: 'nope'"),
        (["evaluate", "nope"], "argument metric: invalid choice: 'nope'"),
        (["classmodel", "goldfish", "--steps", "0"], "argument --steps: must be at least 1"),
        (["classes", "--nope"], "unrecognized arguments: --nope"),
        (["demo", "--parts", "nope"], "argument --parts: invalid choice: 'nope'"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_a_wrong_option_is_one_line_and_a_pointer_to_help(cli, command, says):
    code, out, err = cli(*command)
    prog = " ".join(["deepinside", *command[:1]]) if command and command[0] != "frobnicate" else "deepinside"
    assert code == 2 and out == ""
    first, pointer = err.splitlines()
    assert first.startswith("deepinside: error: ") and says in first
    assert pointer == f"see: {prog} --help"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("command", [["saliency", "x.jpg"], ["classmodel", "goldfish"], ["demo"]])
def test_a_device_this_machine_lacks_is_one_line_and_a_pointer(cli, command):
    code, _, err = cli(*command, "--device", "cuda")
    assert code == 2 and len(err.splitlines()) == 2 and "sees no CUDA GPU" in err and "usage" not in err


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--layer", "features"], "--layer applies to grad-cam and guided-grad-cam only, not to gradient"),
        (["--samples", "5"], "--samples applies to smoothgrad only, not to gradient"),
        (["--noise", "0.3"], "--noise applies to smoothgrad only"),
        (["--method", "smoothgrad", "--ig-steps", "8"], "--ig-steps applies to integrated-gradients only"),
        (["--method", "grad-cam", "--baseline", "0.5"], "--baseline applies to integrated-gradients only"),
    ],
)
def test_an_option_of_another_method_is_refused(cli, tmp_path, cat_jpg, options, says):
    code, _, err = cli("saliency", cat_jpg, "--out", tmp_path / "o", *options)
    assert code == 2 and err.strip() == f"deepinside: error: {err.strip().split('error: ', 1)[1]}"
    assert says in err and not (tmp_path / "o").exists()


def test_an_option_of_one_of_the_methods_compared_is_taken():
    from deepinside.cli import build_parser
    from deepinside.cli._common import methods_from_args

    args = build_parser().parse_args(
        ["evaluate", "faithfulness", "--images", "x", "--methods", "gradient", "smoothgrad", "--samples", "7"]
    )
    gradient, smoothgrad = methods_from_args(args)
    assert gradient.name == "gradient" and smoothgrad.samples == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("metric", "option", "says"),
    [
        ("faithfulness", ["--tolerance", "3"], "--tolerance applies to evaluate pointing-game only"),
        ("sanity-check", ["--steps", "3"], "--steps applies to evaluate faithfulness only"),
        ("faithfulness", ["--checkpoints", "3"], "--checkpoints applies to evaluate sanity-check only"),
        ("faithfulness", ["--config", "paper"], "--config applies to evaluate localization only"),
        ("faithfulness", ["--layer", "features"], "--layer applies to grad-cam and guided-grad-cam only"),
    ],
)
def test_an_option_of_another_metric_is_refused(cli, tmp_path, cat_jpg, metric, option, says):
    code, _, err = cli("evaluate", metric, "--images", cat_jpg, "--methods", "gradient", *option)
    assert code == 2 and len(err.splitlines()) == 1 and says in err


@pytest.mark.parametrize(("command", "verb"), [("saliency", "explained"), ("localize", "localised")])
def test_a_missing_photo_writes_nothing_and_says_so(cli, tmp_path, command, verb):
    code, _, err = cli(command, tmp_path / "nope.jpg", "--out", tmp_path / "o1")
    assert code == 1 and "nope.jpg: no such file" in err
    assert f"0 of 0 images {verb}; 1 path not found; nothing written" in err and "results in" not in err
    assert not (tmp_path / "o1").exists()


def _with_stdout_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``deepinside ARGS`` writing to a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "deepinside", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


def test_a_reader_that_went_away_stops_the_command_quietly():
    run = _with_stdout_closed("classes")
    assert run.stderr == "" and run.returncode == 141  # as a Unix tool stopped by SIGPIPE


def test_a_short_output_into_a_closed_pipe_is_quiet_too():
    # One line fits the buffer: the closed pipe shows only when the buffer is flushed.
    run = _with_stdout_closed("classes", "tabby")
    assert run.stderr == "" and run.returncode == 141
