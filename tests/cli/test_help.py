"""What ``--help`` tells: every command described, only the options that mean something."""

from __future__ import annotations

import argparse

import pytest

from deepinside.cli import build_parser
from deepinside.io.photos import IMAGE_SUFFIXES


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("name", ["saliency", "localize", "evaluate", "classmodel", "classes", "demo"])
def test_every_command_has_a_description(name):
    assert len(_commands()[name].description or "") > 60


def test_classmodel_offers_no_photo_options(cli):
    text = _commands()["classmodel"].format_help()
    assert "--resize" not in text and "--max-pixels" not in text and "--model" in text
    code, _, err = cli("classmodel", "goldfish", "--resize", "stretch")
    assert code == 2 and "unrecognized arguments: --resize stretch" in err


@pytest.mark.parametrize("name", ["saliency", "localize", "evaluate"])
def test_photo_commands_say_which_files_a_folder_gives(name):
    text = " ".join(_commands()[name].format_help().split())
    assert all(suffix in text for suffix in IMAGE_SUFFIXES) and "whatever its suffix" in text


def test_saliency_states_what_each_raw_format_costs():
    text = " ".join(_commands()["saliency"].format_help().split())
    assert "12-megapixel photo: npy (float32, 48 MB)" in text
    assert "npz16 (float16 compressed, 4-19 MB" in text and "none (no values, only the two PNGs" in text


def test_evaluate_says_where_annotation_paths_start():
    text = " ".join(_commands()["evaluate"].format_help().split())
    assert "relative to the annotations file's folder" in text
