from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Image.Image]) -> Path:
    """Real photos (scikit-image's) as JPEG files, two in a subfolder, a
    damaged one among them and a text file that is not a photo."""
    root = tmp_path_factory.mktemp("photos")
    (root / "more").mkdir()
    for i, (name, photo) in enumerate(photos.items()):
        folder = root / "more" if i % 2 else root
        photo.resize((160, 120)).save(folder / f"{name}.jpg", quality=90)
    (root / "damaged.jpg").write_bytes((root / "chelsea.jpg").read_bytes()[:300])
    (root / "notes.txt").write_text("not a photo")
    return root


def without_timings(rows: list[dict]) -> list[dict]:
    """Index rows sorted by path, minus the columns that vary run to run."""
    return sorted(
        ({k: v for k, v in r.items() if not k.endswith("_s")} for r in rows), key=lambda r: r["path"]
    )
