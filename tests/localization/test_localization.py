"""Localisation for free: boxes, segmentation, the pipeline on real photos, the command."""

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import deepinside
from deepinside.cli import main
from deepinside.localization import CONFIGS, PRESETS, centred_box, iou, largest_component_box, localize
from deepinside.localization.boxes import components, union_box
from deepinside.localization.segment import above_mean, graphcut, otsu_cut, threshold
from deepinside.models import Preprocessing


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_components_and_box_rules():
    mask = np.zeros((20, 30), bool)
    mask[2:6, 3:9] = True  # 24 px
    mask[10:18, 20:28] = True  # 64 px
    assert [a for a, _ in components(mask)] == [64, 24]
    assert largest_component_box(mask) == (20.0, 10.0, 28.0, 18.0)
    assert union_box(mask) == (3.0, 2.0, 28.0, 18.0)
    assert union_box(mask, min_fraction=0.5) == (20.0, 10.0, 28.0, 18.0)
    assert largest_component_box(np.zeros((4, 4), bool)) is None
    assert centred_box(100, 50) == pytest.approx((15.0, 7.5, 85.0, 42.5))


def test_graphcut_recovers_a_coloured_object_from_a_few_seeds():
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[...] = (40, 160, 40)
    photo[15:45, 20:50] = (200, 30, 30)  # a red square on green
    saliency_map = np.random.default_rng(0).random((60, 80)).astype(np.float32) * 0.01
    saliency_map[15:45, 20:50] += 0.5  # the object is somewhat salient (no background seeds on it)
    saliency_map[22:38, 27:43] = 1.0  # its middle most (just over the top 5%: the foreground seeds)
    seg = graphcut(photo, saliency_map)
    assert seg.note == ""
    assert iou(largest_component_box(seg.mask), (20, 15, 50, 45)) > 0.9


def test_otsu_cuts_a_two_level_map_between_its_levels():
    # Background spread over 0-0.3 on seven eighths of the map, an object near
    # 0.7 on the rest: the mean (about 0.22) takes background too, Otsu's cut
    # falls between the two levels.
    rng = np.random.default_rng(0)
    saliency_map = rng.uniform(0.0, 0.3, (40, 40))
    saliency_map[10:30, 20:30] = 0.7 + 0.02 * rng.standard_normal((20, 10))
    saliency_map[0, 0] = 1.0  # one stray peak sets the range
    obj = saliency_map > 0.5
    assert otsu_cut(saliency_map).mask.tolist() == obj.tolist()
    assert above_mean(saliency_map).mask.sum() > obj.sum() + 100


def test_otsu_cut_maximises_the_between_class_variance():
    # Against a brute-force search over the same 256 levels of the range.
    values = np.random.default_rng(1).beta(0.6, 1.5, (30, 30))
    v = (values - values.min()) / (values.max() - values.min())

    def between(level: float) -> float:
        above = v >= level
        if above.all() or not above.any():
            return 0.0
        return above.mean() * (1 - above.mean()) * (v[above].mean() - v[~above].mean()) ** 2

    mask = otsu_cut(values).mask
    assert between(float(v[mask].min())) >= max(between(k / 256) for k in range(1, 256)) * 0.999
    assert "constant" in otsu_cut(np.full((3, 3), 0.4)).note


def test_a_map_cut_at_its_own_mean():
    # Mean (0 * 12 + 0.2 * 2 + 0.9 + 1.0) / 16 = 0.14375: the two 0.2 pixels are kept with the peak.
    saliency_map = np.zeros((4, 4), np.float32)
    saliency_map[0, 0], saliency_map[0, 1] = 1.0, 0.9
    saliency_map[3, 2:4] = 0.2
    assert above_mean(saliency_map).mask.tolist() == (saliency_map > 0.14375).tolist()
    assert above_mean(saliency_map).mask.sum() == 4
    # Half the map high: the cut moves up with it (mean 0.5 keeps the high half only).
    half = np.zeros((4, 4), np.float32)
    half[:2] = 1.0
    assert above_mean(half).mask.sum() == 8 and above_mean(half).mask[:2].all()
    assert "constant" in above_mean(np.full((3, 3), 0.4, np.float32)).note


def test_segmentation_fallbacks_are_reported(monkeypatch):
    photo = np.zeros((30, 30, 3), np.uint8)
    assert "constant" in graphcut(photo, np.zeros((30, 30), np.float32)).note
    assert "under 8 px" in graphcut(photo[:4, :4], np.random.rand(4, 4).astype(np.float32)).note
    assert "constant" in threshold(np.ones((5, 5)), 0.2).note
    monkeypatch.setattr(
        cv2, "grabCut", lambda img, mask, *a: mask.fill(cv2.GC_BGD) if mask.shape[0] > 1 else None
    )
    seg = graphcut(photo, np.random.default_rng(1).random((30, 30)).astype(np.float32))
    assert "no foreground" in seg.note and seg.mask.sum() == int(np.ceil(30 * 30 * 0.05))


def test_placement_resamples_to_a_working_size():
    placement = Preprocessing(input_size=(4, 4), resize="stretch").placement((8, 8))
    small = placement.to_photo(torch.arange(16.0).view(4, 4), size=(4, 4))
    torch.testing.assert_close(small, torch.arange(16.0).view(4, 4))


@pytest.fixture(scope="module")
def cat_in_a_corner(photos):
    canvas = Image.new("RGB", (448, 448), (128, 128, 128))
    canvas.paste(photos["chelsea"].resize((224, 224)), (224, 224))
    return canvas


@pytest.mark.parametrize("config", list(CONFIGS))
def test_localize_finds_the_cat(model, cat_in_a_corner, config):
    (found,) = localize(model, [cat_in_a_corner], top_k=5, config=config)
    assert len(found.boxes) == 5 and found.boxes[0].prediction.class_index == found.predictions[0].class_index
    for b in found.boxes:
        x0, y0, x1, y1 = b.box
        assert 0 <= x0 < x1 <= 448 and 0 <= y0 < y1 <= 448
        assert (
            b.saliency.shape == b.mask.shape and b.saliency.dtype == np.float32
        )  # the map the mask came from
    assert found.predictions[0].class_index == 285
    if config == "default":
        assert iou(found.boxes[0].box, (224, 224, 448, 448)) > 0.5


def test_localize_command(tmp_path, photos, capsys):
    photos["coffee"].save(tmp_path / "coffee.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code = main(
        [
            "localize",
            str(tmp_path / "coffee.jpg"),
            str(tmp_path / "junk.jpg"),
            "--top-k",
            "2",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "junk.jpg" in err and "Traceback" not in err
    record = json.loads((out / "coffee.localize-default.json").read_text())
    assert set(record) >= {"image", "width", "height", "model", "predictions", "boxes"}
    assert [b["class_index"] for b in record["boxes"]] == [
        p["class_index"] for p in record["predictions"][:2]
    ]
    assert set(record["boxes"][0]) >= {"class_index", "wnid", "label", "box"}
    assert record["files"] == {
        "overlay": "coffee.localize-default.boxes.png",
        "mask": "coffee.localize-default.mask.png",
    }
    assert Image.open(out / record["files"]["mask"]).size == photos["coffee"].size
    overlay = Image.open(out / record["files"]["overlay"])  # the photo, and its legend strip below
    assert overlay.width == photos["coffee"].width and overlay.height > photos["coffee"].height


@pytest.mark.parametrize(
    "extra, message", [(["--top-k", "0"], "--top-k must be"), (["--method", "nope"], "unknown method")]
)
def test_localize_bad_options(tmp_path, photos, capsys, extra, message):
    photos["coffee"].save(tmp_path / "c.jpg")
    assert main(["localize", str(tmp_path / "c.jpg"), "--out", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_evaluate_localization(tmp_path, photos, capsys):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    (tmp_path / "ann.json").write_text(
        json.dumps(
            [
                {
                    "image": "cat.jpg",
                    "class_index": 285,
                    "width": 451,
                    "height": 300,
                    "boxes": [[40, 0, 420, 300]],
                }
            ]
        )
    )
    code = main(
        [
            "evaluate",
            "localization",
            "--annotations",
            str(tmp_path / "ann.json"),
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "GT-known" in out
    rows = {r["config"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert set(rows) == {*PRESETS, "whole image", "centred box"}
    assert rows["whole image"]["gt_known_loc"] == 1.0  # the box covers most of the photo
    assert 0 <= rows["default"]["maxboxacc_0.5"] <= 1


def _fixed_size_classifier() -> deepinside.Classifier:
    """A network that takes 16x16 inputs only (a Flatten + Linear head, like VGG's)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 16 * 16, 6),
    )
    prep = Preprocessing(input_size=(16, 16), resize="stretch")
    return deepinside.Classifier(net, prep, deepinside.models.with_default_classes(6), feature_layer="1")


def test_a_fixed_size_model_is_told_to_use_the_paper_config(photos):
    model = _fixed_size_classifier()
    with pytest.raises(deepinside.DeepInsideError, match=r"failed on 32x32 inputs.*--config paper"):
        localize(model, [photos["coffee"]], top_k=1)
    (found,) = localize(model, [photos["coffee"]], top_k=2, config="paper")
    assert [b.prediction.class_index for b in found.boxes] == [p.class_index for p in found.predictions[:2]]


def test_photos_are_read_alike_by_the_command_line_and_python(tmp_path):
    deep = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grey
    with Image.open(tmp_path / "deep.png") as opened:
        direct = opened.copy()
    prep = Preprocessing(input_size=(32, 32), resize="stretch")
    via_file, _ = prep(deepinside.io.load_photo(tmp_path / "deep.png"))
    via_python, _ = prep(direct)
    torch.testing.assert_close(via_python, via_file)


def test_result_names_never_repeat():
    from deepinside.io.names import UniqueStems

    stems = UniqueStems()
    names = [stems.next(p) for p in ("a/cat.jpg", "b/cat.jpg", "c/cat-2.jpg", "d/Cat.png")]
    assert names == ["cat", "cat-2", "cat-2-2", "Cat-3"]  # distinct also where case does not count


def test_localize_a_users_model_finds_its_feature_layer(tmp_path, photos, capsys, monkeypatch):
    (tmp_path / "mymodel.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(\n"
        "        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6)\n"
        "    )\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    photos["coffee"].save(tmp_path / "coffee.jpg")
    run = [
        "localize",
        str(tmp_path / "coffee.jpg"),
        "--model",
        "mymodel:make",
        "--input-size",
        "32",
        "--top-k",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(run) == 0  # the feature layer is found, and said once
    err = capsys.readouterr().err
    assert err.count("feature layer 1 (the last spatial feature map") == 1
    record = json.loads((tmp_path / "out" / "coffee.localize-default.json").read_text())
    assert record["boxes"] and record["feature_layer"] == "1"
    assert main([*run, "--feature-layer", "0"]) == 0
    assert "feature layer" not in capsys.readouterr().err


def test_graphcut_gives_the_same_mask_whatever_ran_before_it_in_the_thread(photos):
    """GrabCut's k-means draws from OpenCV's per-thread random state: an
    earlier call on the same thread once changed the next photo's box."""
    import cv2

    from deepinside.localization.segment import graphcut

    photo = np.asarray(photos["chelsea"].resize((160, 120)))
    saliency_map = np.zeros((120, 160), np.float32)
    saliency_map[30:90, 40:120] = np.linspace(0, 1, 60 * 80, dtype=np.float32).reshape(60, 80)
    first = graphcut(photo, saliency_map).mask
    cv2.randu(np.zeros(1000, np.float32), 0, 1)  # draw from this thread's OpenCV random state
    assert np.array_equal(graphcut(photo, saliency_map).mask, first)
