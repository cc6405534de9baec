"""Evaluation fixes: tied ranks, devices, eval mode, options passed on, few
classes, sparse maps in pictures. Tiny hand-built models only."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import deepinside
from deepinside import pictures
from deepinside.attribution.methods import method_from_name
from deepinside.evaluation import deletion_insertion, run
from deepinside.evaluation._stats import _ranks, spearman
from deepinside.evaluation.localization import localization
from deepinside.localization import LocalizationConfig

from .test_evaluation import _CornerDetector


def test_ranks_average_ties():
    ranks = _ranks(torch.tensor([[3.0, 1, 1, 2, 3, 3], [0, 0, 0, 0, 0, 0]]))
    torch.testing.assert_close(
        ranks, torch.tensor([[4.0, 0.5, 0.5, 2, 4, 4], [2.5] * 6], dtype=torch.float64)
    )


def test_spearman_with_ties_by_hand():
    # Ranks (0-based) [0, 1.5, 1.5, 3] and [0.5, 0.5, 2.5, 2.5]; centred
    # [-1.5, 0, 0, 1.5] . [-1, -1, 1, 1] = 3, norms sqrt(4.5) and 2: rho = 1/sqrt(2).
    a = torch.tensor([[[1.0, 2.0], [2.0, 3.0]]])
    b = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    assert float(spearman(a, b)[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    # One salient pixel each, in opposite corners: two indicator vectors, rho = -1/(n - 1).
    one, other = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    one[0, 0, 0], other[0, -1, -1] = 1.0, 1.0
    assert float(spearman(one, other)[0]) == pytest.approx(-1 / 15, abs=1e-12)
    assert float(spearman(one, one)[0]) == pytest.approx(1.0)


def test_spearman_of_a_constant_map_is_zero():
    noise = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros(3, 5, 5)
    assert spearman(noise, zeros).tolist() == [0.0, 0.0, 0.0]
    assert spearman(zeros, noise).tolist() == [0.0, 0.0, 0.0]
    assert spearman(zeros, zeros).tolist() == [0.0, 0.0, 0.0]


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(3)
    a = torch.randint(0, 4, (4, 6, 7), generator=g).float()  # long runs of equal values
    b = torch.randint(0, 3, (4, 6, 7), generator=g).float() * (a > 1)
    ours = spearman(a, b)
    for i in range(4):
        assert float(ours[i]) == pytest.approx(stats.spearmanr(a[i].flatten(), b[i].flatten())[0], abs=1e-12)


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


def test_a_signed_map_shows_zero_in_the_middle_and_keeps_its_sign():
    from PIL import Image

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
