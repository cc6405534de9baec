"""Running the command in-process as a user runs it: exit status, stdout, stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from deepinside.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """``cli("saliency", path, ...)`` -> (exit status, stdout, stderr), whether
    the command returned or argparse stopped it."""

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = int(stop.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cat_jpg(tmp_path: Path, photos: dict[str, Image.Image]) -> Path:
    """The scikit-image cat (451x300) as a JPEG file."""
    path = tmp_path / "cat.jpg"
    photos["chelsea"].save(path)
    return path
