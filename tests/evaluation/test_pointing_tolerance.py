"""The pointing game's tolerance is in pixels of the original photo."""

import json

import pytest

from deepinside.errors import DeepInsideError
from deepinside.evaluation.annotations import load_annotations
from deepinside.evaluation.pointing import centre_baseline, hits, original_scale


def test_tolerance_scales_to_the_stored_photo() -> None:
    # A 500 x 375 original stored at 227 x 227: 15 original px are 6.8 stored px
    # along x and 9.1 along y.
    scale = original_scale(227, 227, (500, 375))
    assert scale == pytest.approx((500 / 227, 375 / 227))
    box = [(100.0, 100.0, 120.0, 120.0)]
    assert hits((127.0, 110.0), box, 15.0)  # 7 stored px right: inside 15 stored px
    assert not hits((127.0, 110.0), box, 15.0, scale)  # 15.4 original px: outside
    assert hits((126.5, 110.0), box, 15.0, scale)  # 14.3 original px
    assert hits((110.0, 129.0), box, 15.0, scale)  # 9 stored px down: 14.9 original px
    assert not hits((110.0, 129.5), box, 15.0, scale)


def test_no_original_size_keeps_the_stored_pixels() -> None:
    assert original_scale(227, 227, None) == (1.0, 1.0)
    assert centre_baseline(200, 200, [(0.0, 0.0, 90.0, 90.0)], 15.0)  # 14.1 px from the centre
    assert not centre_baseline(200, 200, [(0.0, 0.0, 90.0, 90.0)], 15.0, (2.0, 2.0))


def test_annotations_carry_original_size(tmp_path) -> None:
    path = tmp_path / "a.json"
    entry = {"image": "x.jpg", "class_index": 1, "width": 227, "height": 227, "boxes": [[1, 2, 30, 40]]}
    path.write_text(json.dumps([{**entry, "original_size": [500, 375]}, entry]))
    first, second = load_annotations(path)
    assert first.original_size == (500, 375) and second.original_size is None
    path.write_text(json.dumps([{**entry, "original_size": [500]}]))
    with pytest.raises(DeepInsideError, match="original_size"):
        load_annotations(path)
