"""The pictures a user sees first: labels that read, headings, right answers."""

from __future__ import annotations

import numpy as np
from PIL import Image

from deepinside import figures, pictures


def _label_rows(picture: Image.Image, colour: tuple[int, int, int], x0: int = 0, y0: int = 0) -> np.ndarray:
    """Rows (from ``y0``) with at least 10 pixels of a label's background ``colour``
    right of ``x0`` and within 100 rows: inside a box, clear of its outline, only
    labels are filled."""
    a = np.asarray(picture).astype(int)[:, x0:]
    on = np.abs(a - np.array(colour)).sum(-1) < 10
    rows = np.flatnonzero(on.sum(1) >= 10)
    return rows[(rows >= y0) & (rows < y0 + 100)]


def test_labels_of_boxes_with_close_corners_do_not_hide_each_other():
    photo = Image.new("RGB", (300, 200), "white")
    lower, upper = (20.0, 34.0, 200.0, 150.0), (20.0, 20.0, 200.0, 150.0)
    drawn = pictures.draw_boxes(photo, [(lower, "first label"), (upper, "second label")], label_size=14)
    red, green = _label_rows(drawn, (255, 40, 40), 25, 25), _label_rows(drawn, (40, 200, 40), 25, 25)
    assert len(red) >= 10 and len(green) >= 10  # both labels are there, at least 10 px tall
    assert red.max() < green.min() or green.max() < red.min()  # one above the other, not overlapping


def test_labels_keep_their_size_in_the_figure():
    photo = Image.new("RGB", (1200, 800), "white")
    boxed = figures.boxes_at_cell_size(photo, [((100.0, 100.0, 900.0, 700.0), "paper")])
    assert max(boxed.size) == figures.CELL
    assert len(_label_rows(boxed, (255, 40, 40), 25, 25)) >= 10


def test_the_demo_photos_are_classified_right(model):
    expected = {"chelsea": "cat", "coffee": "espresso", "camera": "tripod", "stereo_motorcycle": "moped"}
    photos = figures.bundled_photos()
    x, _ = model.prepare(photos)
    top = model.predictions(model.scores(x), k=1)
    for photo, (best,) in zip(photos, top):
        assert expected[photo.filename] in best.label and best.probability > 0.4


def test_figures_have_column_headings():
    cells = [[Image.new("RGB", (50, 50), "black")] * 2]
    plain = pictures.figure(cells, ["caption"], cell=50)
    headed = pictures.figure(cells, ["caption"], cell=50, headings=("photo", "map"))
    assert headed.height > plain.height
    top = np.asarray(headed)[: headed.height - plain.height + 8]
    assert (top < 128).any()  # dark heading text above the first row


def test_localize_overlay_keeps_labels_off_the_photo_in_a_legend_strip():
    photo = Image.new("RGB", (120, 90), (90, 140, 200))
    boxes = [((10, 10, 60, 60), "parachute", 0.8), ((30, 20, 100, 80), "kite", 0.02)]
    drawn = pictures.draw_boxes_with_legend(photo, boxes, label_size=12)
    assert drawn.width == 120 and drawn.height > 90  # the strip below the photo
    pixels = np.asarray(drawn)
    inside = pixels[15:55, 15:28]  # the object inside the first box: no label drawn over it
    assert (inside == (90, 140, 200)).all()
    # The likely box is drawn thick, the faint one 1 px wide.
    assert (pixels[10:12, 30] == (255, 40, 40)).all()
    assert (pixels[20, 40] == (40, 200, 40)).all() and (pixels[21, 40] == (90, 140, 200)).all()
    # The strip names both, each beside its colour.
    strip = pixels[90:]
    assert ((strip == (255, 40, 40)).all(-1)).any() and ((strip == (40, 200, 40)).all(-1)).any()
