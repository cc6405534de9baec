"""localize() from Python: photo pixels, paths, memory, clear refusals."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

import deepinside
from deepinside import DeepInsideError
from deepinside.localization import localize

# The module that runs the passes, whose attribute calls are counted.
maps_module = importlib.import_module("deepinside.localization.maps")


def test_masks_and_maps_are_in_the_photos_pixels(model, photos):
    photo = photos["chelsea"]  # 451x300: worked on at 320x213
    (found,) = localize(model, [photo], top_k=2)
    for b in found.boxes:
        assert b.mask.shape == b.saliency.shape == (photo.height, photo.width)
        assert b.mask.dtype == bool and b.saliency.dtype == np.float32
        assert b.working_mask.shape == (213, 320)
        # The box is the mask's largest component: the mask fills it, in the same pixels.
        x0, y0, x1, y1 = (round(v) for v in b.box)
        assert b.mask[y0:y1, x0:x1].mean() > 0.5 and b.mask.sum() >= 0.9 * b.mask[y0:y1, x0:x1].sum()


def test_paths_are_read_like_the_command_line_reads_them(model, photos, tmp_path):
    photo = photos["coffee"].resize((150, 100))
    photo.save(tmp_path / "coffee.png")
    (from_path,) = localize(model, [tmp_path / "coffee.png"], top_k=1)
    (from_image,) = localize(model, [photo], top_k=1)
    assert from_path.boxes[0].box == from_image.boxes[0].box
    with pytest.raises(DeepInsideError, match="a list of photos"):
        localize(model, str(tmp_path / "coffee.png"), top_k=1)  # type: ignore[arg-type]


def test_rows_per_pass_are_bounded_by_pixels_not_photos(model, photos, monkeypatch):
    seen = []
    real = maps_module.attribute

    def spy(m, x, targets, method):
        seen.append((method.chunk, x.shape[-2] * x.shape[-1]))
        return real(m, x, targets, method)

    monkeypatch.setattr(maps_module, "attribute", spy)
    photo = photos["coffee"].resize((64, 48))
    localize(model, [photo] * 3, top_k=2, batch_size=3)
    assert [s for s in seen] and all(chunk * pixels <= maps_module.PIXELS_PER_PASS for chunk, pixels in seen)
    assert seen[-1][0] < seen[0][0]  # the 2x view takes fewer inputs per pass than the 1x view


def test_a_cam_config_on_a_model_without_a_feature_map_names_both_ways_out():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))  # no spatial map anywhere
    model = deepinside.load_model(net.eval(), input_size=16)
    photo = np.zeros((16, 16, 3), np.uint8)
    from PIL import Image

    with pytest.raises(DeepInsideError, match=r"no layer giving a spatial feature map.*--config paper"):
        localize(model, [Image.fromarray(photo)], top_k=1)
    assert localize(model, [Image.fromarray(photo)], top_k=1, config="paper")[0].boxes


def test_grad_cam_shares_the_forward_pass_among_classes_with_the_same_maps(model, batch):
    targets = torch.tensor([[281, 967, 285], [967, 504, 281]])
    together = deepinside.attribute(model, batch, targets, "grad-cam")
    for b in range(2):
        for k in range(3):
            alone = deepinside.attribute(model, batch[b : b + 1], int(targets[b, k]), "grad-cam")
            torch.testing.assert_close(together.map[b, k], alone.map[0], rtol=1e-4, atol=1e-5)
    assert together.targets.tolist() == targets.tolist()
