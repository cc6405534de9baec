"""The one photo reader: bad files come back in their place with a reason,
the others are still read, in order, here or in reading threads."""

import numpy as np
import pytest
import torch
from PIL import Image

from deepinside import DeepInsideError, ImageError
from deepinside.io.prefetch import read_photos


@pytest.fixture
def folder(tmp_path):
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(np.full((20, 10), 50, np.uint8), "L").save(tmp_path / "c.png")
    return tmp_path


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_file_is_reported_in_its_place_and_the_others_are_read(folder, workers):
    items = [folder / "a.png", folder / "broken.jpg", folder / "missing.png", folder / "c.png"]
    found = list(read_photos(items, workers=workers, threads=True))
    assert [f.source for f in found] == [str(p) for p in items]
    assert [f.ok for f in found] == [True, False, False, True]
    assert found[1].photo is None and found[1].error.startswith(f"{folder / 'broken.jpg'}: ")
    assert found[2].error == f"{folder / 'missing.png'}: no such file"
    assert found[0].checked().size == (40, 30) and found[3].checked().mode == "RGB"
    with pytest.raises(ImageError, match="broken.jpg"):
        found[1].checked()


def test_the_preprocessing_is_any_callable_and_its_placement_comes_back(folder):
    def prepare(photo: Image.Image) -> tuple[torch.Tensor, str]:
        return torch.zeros(3, 2, 2), f"{photo.width}x{photo.height}"

    (found,) = read_photos([Image.open(folder / "a.png")], preprocessing=prepare)
    assert found.placement == "40x30" and found.input is not None and found.input.shape == (3, 2, 2)


def test_a_single_photo_or_a_wrong_item_is_refused_in_one_line(folder):
    with pytest.raises(DeepInsideError, match="give a list of photos"):
        list(read_photos(folder / "a.png"))
    with pytest.raises(DeepInsideError, match="a PIL image or a file path, got a int"):
        list(read_photos([folder / "a.png", 7]))


def test_preparing_a_batch_raises_on_an_unreadable_photo(model, folder):
    inputs, placements = model.prepare([folder / "a.png", Image.open(folder / "c.png")])
    assert inputs.shape[0] == 2 and placements[0].photo_size == (40, 30)
    with pytest.raises(ImageError, match="broken.jpg"):
        model.prepare([folder / "a.png", folder / "broken.jpg"])
