"""Evaluation metrics against known answers and library oracles."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

import deepinside
from deepinside.evaluation import (
    auc,
    cascading_randomization,
    deletion_insertion,
    gaussian_blur,
    load_annotations,
    match_images,
    pointing_game,
)
from deepinside.evaluation._stats import spearman, ssim
from deepinside.evaluation.sanity import parametric_layers


def test_spearman_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 9, 7, generator=g), torch.rand(3, 9, 7, generator=g)
    b[0] = a[0] * 2 + 1  # monotone: exactly 1
    ours = spearman(a, b)
    for i in range(3):
        assert float(ours[i]) == pytest.approx(spearmanr(a[i].flatten(), b[i].flatten())[0], abs=1e-12)
    assert float(ours[0]) == pytest.approx(1.0)


def test_ssim_matches_scikit_image():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 32, 40, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.rand(2, 32, 40, generator=g, dtype=torch.float64)
    ours = ssim(a, b)

    def unit(t):
        return ((t - t.min()) / (t.max() - t.min())).numpy()

    for i in range(2):
        ref = structural_similarity(
            unit(a[i]),
            unit(b[i]),
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert float(ours[i]) == pytest.approx(ref, abs=1e-6)
    assert float(ssim(a, a).min()) == pytest.approx(1.0)


def test_auc_of_simple_curves():
    curves = torch.stack([torch.full((11,), 0.3), torch.linspace(0, 1, 11)])
    torch.testing.assert_close(auc(curves), torch.tensor([0.3, 0.5]))


class _CornerDetector(nn.Module):
    """Class 0's score is 8 x the mean of the top-left 4x4 corner of channel 0;
    class 1's is 0. Its probability falls as soon as the corner is deleted."""

    def forward(self, x):
        s = 8 * x[:, 0, :4, :4].mean((1, 2))
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_deletion_and_insertion_reward_the_true_map():
    truth = torch.zeros(1, 8, 8)
    truth[0, :4, :4] = 1.0
    x = truth[:, None].expand(1, 3, 8, 8).clone()  # bright corner on black: blurring dims it
    model = _CornerDetector()
    good = deletion_insertion(model, x, truth, torch.tensor([0]), steps=4, blur_sigma=1.0)
    bad = deletion_insertion(model, x, 1 - truth, torch.tensor([0]), steps=4, blur_sigma=1.0)
    p_full = torch.sigmoid(torch.tensor(8.0))
    # Deletion starts at the intact image and ends at the all-zero one.
    torch.testing.assert_close(good.deletion[0, [0, -1]], torch.stack([p_full, torch.tensor(0.5)]))
    # The true map removes the whole corner in the first quarter of the steps.
    torch.testing.assert_close(good.deletion[0, 1], torch.tensor(0.5))
    assert float(good.deletion_auc) < float(bad.deletion_auc)
    assert float(good.insertion_auc) > float(bad.insertion_auc)
    torch.testing.assert_close(good.insertion[0, -1], p_full)


def test_gaussian_blur_keeps_constants_and_smooths():
    flat = torch.full((1, 3, 9, 9), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    spike = torch.zeros(1, 1, 9, 9)
    spike[0, 0, 4, 4] = 1
    blurred = gaussian_blur(spike, 1.0)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-6) and float(blurred.max()) < 0.2


def test_pointing_game_tolerance():
    m = np.zeros((100, 100))
    m[50, 70] = 1.0  # the maximum at x=70.5, y=50.5
    assert pointing_game(m, [(10, 10, 60, 60)], tolerance=15)  # 10.5 px right of the box
    assert not pointing_game(m, [(10, 10, 60, 60)], tolerance=5)
    assert pointing_game(m, [(0, 0, 5, 5), (65, 45, 80, 55)], tolerance=0)


def test_sanity_check_on_a_small_network_leaves_it_unchanged():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.randn(2, 3, 16, 16)
    result = cascading_randomization(net, x, torch.tensor([1, 2]), "gradient", checkpoints=3)
    assert parametric_layers(net) == ["0", "2", "6"]
    assert result.layers == ["6", "2", "0"]
    assert result.spearman.shape == (3, 2) and result.ssim.shape == (3, 2)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert result.final_spearman < 0.5


class _HeadDefinedFirst(nn.Module):
    """Its classifier is defined before the convolution that feeds it."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 3)
        self.body = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)).mean((2, 3)))


def test_sanity_check_randomises_from_the_output_down_whatever_the_definition_order():
    torch.manual_seed(0)
    net = _HeadDefinedFirst()
    x = torch.randn(2, 3, 12, 12)
    assert parametric_layers(net) == ["head", "body"]
    assert parametric_layers(net, x[:1]) == ["body", "head"]
    assert not net.head._forward_hooks  # the hooks that saw the order are gone
    result = cascading_randomization(net, x, torch.tensor([0, 2]), "gradient", checkpoints=2)
    assert result.layers == ["head", "body"]
    with pytest.raises(RuntimeError):  # a forward pass that fails says so, and leaves no hooks behind
        parametric_layers(net, torch.randn(1, 5, 12, 12))
    assert not net.head._forward_hooks and not net.body._forward_hooks


def _write(tmp_path, entries):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"image": "a.jpg", "class_index": 1000, "boxes": []}, r"entry 0 \(a.jpg\): class_index 1000"),
        (
            {"image": "a.jpg", "class_index": 1, "width": 10, "height": 10, "boxes": [[0, 0, 30, 5]]},
            "outside the 10x10",
        ),
        ({"image": "a.jpg", "class_index": 1, "boxes": [[5, 5, 1, 9]]}, "empty or inverted"),
        ({"class_index": 1}, "needs 'image'"),
    ],
)
def test_bad_annotation_entries_are_named(tmp_path, entry, message):
    with pytest.raises(deepinside.DeepInsideError, match=message):
        load_annotations(_write(tmp_path, [entry]))


def test_annotations_must_cover_the_images(tmp_path):
    entries = load_annotations(
        _write(tmp_path, [{"image": "a.jpg", "class_index": 3, "boxes": [[0, 0, 2, 2]]}])
    )
    assert match_images(entries, [tmp_path / "a.jpg"])[0].class_index == 3
    with pytest.raises(deepinside.DeepInsideError, match="b.jpg: has no entry"):
        match_images(entries, [tmp_path / "b.jpg"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(deepinside.DeepInsideError, match="not a JSON annotations file"):
        load_annotations(tmp_path / "bad.json")
