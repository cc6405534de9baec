"""Evaluation metrics against known answers and library oracles."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

import deepinside
from deepinside.attribution.methods import method_from_name
from deepinside.evaluation import (
    auc,
    cascading_randomization,
    deletion_insertion,
    gaussian_blur,
    load_annotations,
    match_images,
    pointing_game,
    run,
)
from deepinside.evaluation._stats import spearman, ssim
from deepinside.evaluation.localization import localization
from deepinside.evaluation.sanity import parametric_layers
from deepinside.localization import LocalizationConfig


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


def test_deletion_insertion_takes_maps_of_another_dtype():
    truth = torch.zeros(1, 8, 8)
    truth[0, :4, :4] = 1.0
    x = truth[:, None].expand(1, 3, 8, 8).clone()
    same = deletion_insertion(_CornerDetector(), x, truth, torch.tensor([0]), steps=4, blur_sigma=1.0)
    other = deletion_insertion(
        _CornerDetector(), x, truth.double(), torch.tensor([0]), steps=4, blur_sigma=1.0
    )
    torch.testing.assert_close(other.deletion, same.deletion)
    torch.testing.assert_close(other.insertion, same.insertion)


def _tiny(classes: int = 3) -> deepinside.Classifier:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )
    return deepinside.Classifier(
        net, deepinside.Preprocessing(input_size=(24, 24), resize="stretch"), name="tiny"
    )


def _samples(n: int, classes: bool = False) -> list[run.Sample]:
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]
    return [
        run.Sample(f"p{i}", p, (i % 3) if classes else None, ((4.0, 4.0, 24.0, 24.0),))
        for i, p in enumerate(photos)
    ]


def test_random_baseline_is_made_on_the_inputs_device(monkeypatch):
    seen = []
    real_random, real_curves = run.random_maps, run.deletion_insertion

    def random_maps(shape, seed=0, device=None):
        seen.append(device)
        return real_random(shape, seed, device or "cpu")

    def curves(model, inputs, maps, targets, **kw):
        assert maps.device == inputs.device
        return real_curves(model, inputs, maps, targets, **kw)

    monkeypatch.setattr(run, "random_maps", random_maps)
    monkeypatch.setattr(run, "deletion_insertion", curves)
    model = _tiny()
    run.faithfulness(model, _samples(2), [method_from_name("gradient")], steps=2)
    assert seen == [next(model.parameters()).device]


def test_evaluation_leaves_a_train_mode_model_as_it_was():
    model = _tiny(classes=6).train()
    bn = model.net[1]
    stats = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    samples = _samples(3)  # no classes: the model's top-1 is scored
    run.faithfulness(model, samples, [method_from_name("gradient")], steps=2)
    localization(model, samples, [LocalizationConfig("t", segmentation="threshold", work_side=16)])
    assert all(m.training for m in model.modules())
    for before, after in zip(stats, (bn.running_mean, bn.running_var, bn.num_batches_tracked)):
        assert torch.equal(before, after)


def test_localization_with_fewer_than_five_classes():
    rows = localization(
        _tiny(classes=2), _samples(2), [LocalizationConfig("t", segmentation="threshold", work_side=16)]
    )
    assert [r["config"] for r in rows] == ["t", "whole image", "centred box"]
    assert all(r["images"] == 2 for r in rows)


def test_reduce_and_batch_size_reach_the_methods(monkeypatch):
    reductions, batch_sizes = [], []
    real_attribute, real_cascade = run.attribute, run.cascading_randomization

    def attribute(model, inputs, targets, method, reduce="max-abs", **kw):
        reductions.append(reduce)
        return real_attribute(model, inputs, targets, method, reduce, **kw)

    def cascade(model, inputs, targets, method, reduce="max-abs", **kw):
        reductions.append(reduce)
        batch_sizes.append(len(inputs))
        return real_cascade(model, inputs, targets, method, reduce, **kw)

    monkeypatch.setattr(run, "attribute", attribute)
    monkeypatch.setattr(run, "cascading_randomization", cascade)
    model, samples, methods = _tiny(), _samples(5, classes=True), [method_from_name("gradient")]
    run.faithfulness(model, samples, methods, steps=2, batch_size=5, reduce="sum")
    run.pointing(model, samples, methods, batch_size=5, reduce="l2")
    assert reductions == ["sum", "l2"]
    reductions.clear()
    progress = []
    (rows,) = run.sanity(
        model, samples, methods, checkpoints=2, progress=progress.append, reduce="sum-abs", batch_size=2
    )
    assert reductions == ["sum-abs"] * 3 and batch_sizes == [2, 2, 1] and progress == [2, 2, 1]
    assert rows["images"] == 5 and len(rows["spearman"]) == 2
    # The cascade is seeded: batch by batch gives what one batch of all photos gives.
    (whole,) = run.sanity(model, samples, methods, checkpoints=2, reduce="sum-abs", batch_size=5)
    assert rows["spearman"] == pytest.approx(whole["spearman"], abs=1e-6)
    assert rows["ssim"] == pytest.approx(whole["ssim"], abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_evaluation_on_a_gpu():
    truth = torch.zeros(1, 8, 8)
    truth[0, :4, :4] = 1.0
    x = truth[:, None].expand(1, 3, 8, 8).clone()
    on_cpu = deletion_insertion(_CornerDetector(), x, truth, torch.tensor([0]), steps=4, blur_sigma=1.0)
    on_gpu = deletion_insertion(
        _CornerDetector(), x.cuda(), truth, torch.tensor([0]), steps=4, blur_sigma=1.0
    )
    torch.testing.assert_close(on_gpu.deletion.cpu(), on_cpu.deletion)
    model, methods = _tiny(classes=6).cuda().train(), [method_from_name("gradient")]
    samples = _samples(3)
    rows = run.faithfulness(model, samples, methods, steps=2, batch_size=2)
    assert [r["method"] for r in rows] == ["gradient", "random"]
    assert run.pointing(model, samples, methods, batch_size=2)[0]["images"] == 3
    assert run.sanity(model, samples, methods, checkpoints=2, batch_size=2)[0]["images"] == 3
    assert localization(model, samples, [LocalizationConfig("t", segmentation="threshold", work_side=16)])
    assert spearman(truth.cuda(), truth.cuda()).device.type == "cuda"
    assert all(m.training for m in model.modules())


def test_a_flat_map_is_not_rewarded_for_the_raster_order_of_its_ties():
    # The corner detector looks at the top-left 4x4 of a 16x16 image; a map that
    # says nothing (all equal) deleted in raster order would remove that corner's
    # rows within the first quarter of the steps and score almost as well as the truth.
    truth = torch.zeros(1, 16, 16)
    truth[0, :4, :4] = 1.0
    x = truth[:, None].expand(1, 3, 16, 16).clone()
    flat = torch.zeros(1, 16, 16)
    model = _CornerDetector()
    ties = [
        float(
            deletion_insertion(
                model, x, flat, torch.tensor([0]), steps=16, blur_sigma=1.0, seed=s
            ).deletion_auc
        )
        for s in range(20)
    ]
    noise = [
        float(
            deletion_insertion(
                model,
                x,
                torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(s)),
                torch.tensor([0]),
                steps=16,
                blur_sigma=1.0,
            ).deletion_auc
        )
        for s in range(20)
    ]
    order = torch.arange(256).float().flip(0).view(1, 16, 16)  # the raster order, spelt out
    raster = float(
        deletion_insertion(model, x, order, torch.tensor([0]), steps=16, blur_sigma=1.0).deletion_auc
    )
    assert sum(ties) / 20 == pytest.approx(sum(noise) / 20, abs=0.03)  # a flat map ranks like a random one
    assert raster < sum(ties) / 20 - 0.1
    same = deletion_insertion(model, x, flat, torch.tensor([0]), steps=16, blur_sigma=1.0, seed=3)
    torch.testing.assert_close(same.deletion_auc, torch.tensor([ties[3]]))  # fixed by the seed
