"""MaxBoxAccV2 on tiny cases worked out by hand (Choe et al. 2020's protocol)."""

import numpy as np
import pytest

from deepinside.evaluation.maxboxacc import (
    SIDE,
    THRESHOLDS,
    MaxBoxAccV2,
    benchmark_box,
    benchmark_scoremap,
    box_scoremap,
    inclusive_iou,
    photo_hits,
    threshold_boxes,
)


def two_blobs() -> np.ndarray:
    """A large blob at 1.0 and a smaller one at 0.5 on the 224 grid."""
    scoremap = np.zeros((SIDE, SIDE), np.float32)
    scoremap[30:90, 20:60] = 1.0  # 40 x 60 px
    scoremap[150:180, 150:190] = 0.5  # 40 x 30 px
    return scoremap


def test_every_component_counts_not_only_the_largest() -> None:
    # The small blob's box is (150, 150, 190, 180): x + w, y + h. It is kept
    # while int(t * 255) < 127, i.e. for t = 0.00 ... 0.49 (50 thresholds).
    hits = photo_hits(two_blobs(), [(150, 150, 190, 180)])
    assert hits[:, 0].sum() == 50 and hits[:50].all() and not hits[50:].any()


def test_a_hit_against_any_ground_truth_box() -> None:
    far_away = (0, 200, 10, 210)
    assert photo_hits(two_blobs(), [far_away, (20, 30, 60, 90)]).any(0).all()
    assert not photo_hits(two_blobs(), [far_away]).any()


def test_inclusive_iou_by_hand() -> None:
    # (0, 0, 100, 50) against (0, 0, 100, 100): 101 * 51 / (101 * 101) = 0.505.
    iou = inclusive_iou(np.array([[0, 0, 100, 50]]), np.array([[0, 0, 100, 100]]))
    assert iou[0, 0] == pytest.approx(51 / 101)


def test_maxboxacc_v2_of_two_photos_by_hand() -> None:
    acc = MaxBoxAccV2()
    acc.add_scoremap(two_blobs(), [(150, 150, 190, 180)])  # a hit at every IoU level
    half = np.zeros((SIDE, SIDE), np.float32)
    half[0:50, 0:100] = 1.0  # box (0, 0, 100, 50): IoU 0.505 with the truth
    acc.add_scoremap(half, [(0, 0, 100, 100)])
    row = acc.result()
    assert (row["maxboxacc_0.3"], row["maxboxacc_0.5"], row["maxboxacc_0.7"]) == (1.0, 1.0, 0.5)
    assert row["maxboxacc_v2"] == pytest.approx(2.5 / 3)


def plateau_with_peak(level: float) -> np.ndarray:
    """A 200 x 200 plateau at ``level`` with a 10 x 10 peak at 1.0 in it: the
    peak's box (100, 100, 110, 110) appears once the plateau is cut."""
    scoremap = np.zeros((SIDE, SIDE), np.float32)
    scoremap[0:200, 0:200] = level
    scoremap[100:110, 100:110] = 1.0
    return scoremap


def test_the_best_threshold_is_one_for_the_whole_data_set() -> None:
    peak = [(100, 100, 110, 110)]
    # Plateau at 0.3 (76 of 255): cut from t = 0.30 on; the two blobs' small
    # box is there up to t = 0.49: thresholds 0.30 ... 0.49 serve both photos.
    acc = MaxBoxAccV2()
    acc.add_scoremap(two_blobs(), [(150, 150, 190, 180)])
    acc.add_scoremap(plateau_with_peak(0.3), peak)
    assert acc.result()["maxboxacc_0.5"] == 1.0
    assert np.flatnonzero(acc.hits[:, 1] == 2).tolist() == list(range(30, 50))
    # Plateau at 0.6: cut only from t = 0.60 on, when the small blob is gone.
    acc = MaxBoxAccV2()
    acc.add_scoremap(two_blobs(), [(150, 150, 190, 180)])
    acc.add_scoremap(plateau_with_peak(0.6), peak)
    assert acc.result()["maxboxacc_0.5"] == 0.5


def test_a_constant_map_finds_nothing() -> None:
    scoremap = benchmark_scoremap(np.full((50, 80), 3.0))
    assert not scoremap.any()
    assert (threshold_boxes(scoremap, 0.0) == 0).all()
    assert not photo_hits(scoremap, [(10, 10, 200, 200)]).any()


def test_boxes_and_maps_go_to_the_224_grid() -> None:
    assert benchmark_box((3, 5, 101, 201), 448, 448) == (1, 2, 50, 100)
    assert benchmark_scoremap(np.random.default_rng(0).random((300, 500))).shape == (SIDE, SIDE)
    acc = MaxBoxAccV2()
    photo_map = np.zeros((448, 448))
    photo_map[100:300, 40:240] = 1.0
    acc.add_map(photo_map, [(40, 100, 240, 300)], 448, 448)
    assert acc.result()["maxboxacc_0.7"] == 1.0


def test_a_fixed_box_gives_the_same_box_at_every_threshold() -> None:
    scoremap = box_scoremap((10, 20, 110, 220), 224, 224)
    assert all((threshold_boxes(scoremap, t) == [[10, 20, 110, 220]]).all() for t in THRESHOLDS[::10])
