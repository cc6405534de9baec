"""Maps as pictures: sparse maps stay visible, signed maps keep their sign."""

import numpy as np
from PIL import Image

from deepinside import pictures


def test_normalize_keeps_a_sparse_map_visible():
    sparse = np.zeros((100, 100), np.float32)
    sparse[10, 10:15] = [1, 2, 3, 4, 5]  # 0.05% of the pixels: the 99th percentile is the minimum
    grey = np.asarray(pictures.grey_map(sparse))
    assert grey[10, 14] == 255 and grey[10, 10] == 51 and grey.sum() == 255 * 3
    # Dense maps still saturate at the percentile; the minimum is subtracted first.
    ramp = np.arange(100, dtype=np.float32).reshape(10, 10) - 50
    np.testing.assert_allclose(
        pictures.normalize(ramp, 50, signed=False), np.clip((ramp + 50) / 49.5, 0, 1), rtol=1e-6
    )
    assert not pictures.normalize(np.full((4, 4), 3.0), 99).any()


def test_a_signed_map_shows_zero_in_the_middle_and_keeps_its_sign():

    signed = np.zeros((4, 6), np.float32)
    signed[0, 0], signed[1, 1], signed[2, 2] = 2.0, -4.0, 1.0  # e.g. the sum reduction
    v = pictures.normalize(signed)
    assert v[3, 3] == 0.5 and v[1, 1] == 0.0 and v[0, 0] == 0.75 and v[2, 2] == 0.625
    np.testing.assert_allclose(
        pictures.normalize(-signed), 1 - v
    )  # the sign flips the picture, not the scale
    grey = np.asarray(pictures.grey_map(signed, percentile=100))
    assert grey[3, 3] == 128 and grey[1, 1] == 0
    heat = np.asarray(pictures.heatmap(signed))
    assert tuple(heat[3, 3]) == (255, 255, 255) and tuple(heat[1, 1]) == (0, 0, 255)  # bwr: white at zero
    photo = Image.new("RGB", (6, 4), (10, 200, 30))
    shown = np.asarray(pictures.overlay(photo, signed, opacity=1.0, percentile=100))
    assert tuple(shown[3, 3]) == (10, 200, 30)  # zero: the photo as it is
    assert (
        tuple(shown[1, 1]) == (0, 0, 255) and shown[0, 0, 0] > shown[0, 0, 2]
    )  # negative blue, positive red
    # Maps without negative values are shown as before: their minimum is black,
    # also with round-off below zero, infinities or NaN in them.
    assert pictures.normalize(np.abs(signed))[3, 3] == 0.0
    odd = np.abs(signed)
    odd[3, 0], odd[3, 1], odd[3, 2] = -1e-7, -np.inf, np.nan
    np.testing.assert_allclose(pictures.normalize(odd)[3], 0.0, atol=1e-6)
    assert tuple(np.asarray(pictures.heatmap(odd))[3, 1]) == tuple(
        np.asarray(pictures.heatmap(np.abs(signed)))[3, 1]
    )
