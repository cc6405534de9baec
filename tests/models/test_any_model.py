"""Every model a user brings, as it is: each case of the issue "Every model a
user brings" checked against plain autograd or Captum on the model itself."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

import deepinside
from deepinside import DeepInsideError, attribute
from deepinside.models import select_output

from . import zoo


def plain_gradient(model: nn.Module, x: torch.Tensor, score) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """d score / d x by plain autograd on a copy of the input, the model in eval mode."""
    x = x.clone().requires_grad_(True)
    model.eval()
    (grad,) = torch.autograd.grad(score(select_output(model(x))).sum(), x)
    return grad


def test_grad_cam_on_a_layer_before_an_inplace_relu_is_that_layers_own():
    torch.manual_seed(0)
    net, x = zoo.InplaceVgg().eval(), torch.randn(2, 3, 32, 32)
    for layer in (net.features[4], net.features[5]):  # the conv, then the in-place ReLU after it
        ours = attribute(net, x, [1, 3], "grad-cam", layer=layer).raw
        oracle = LayerGradCam(net, layer).attribute(x.clone(), target=[1, 3], relu_attributions=True)
        expected = LayerAttribution.interpolate(oracle, x.shape[-2:], "bilinear")
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)
    conv = attribute(net, x, [1, 3], "grad-cam", layer="features.4").raw
    relu = attribute(net, x, [1, 3], "grad-cam", layer="features.5").raw
    assert not torch.allclose(conv, relu)  # before the fix, the conv's map was the ReLU's


def test_a_view_flatten_after_a_convolution_gives_the_models_own_gradient():
    torch.manual_seed(0)
    net, x = zoo.InplaceVgg().eval(), torch.randn(3, 3, 32, 32)
    for method in ("gradient", "gradient-x-input"):
        ours = attribute(net, x, [0, 1, 2], method).raw
        grad = plain_gradient(net, x, lambda s: s[torch.arange(3), [0, 1, 2]])
        torch.testing.assert_close(ours, grad if method == "gradient" else grad * x, rtol=1e-4, atol=1e-7)


def test_an_optional_forward_argument_keeps_its_default():
    torch.manual_seed(0)
    net, x = zoo.OptionalArgument().eval(), torch.randn(2, 3, 32, 32)
    ours = attribute(net, x, 2, "gradient").raw
    torch.testing.assert_close(ours, plain_gradient(net, x, lambda s: s[:, 2]), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("cls", [zoo.DictOutput, zoo.TupleOutput])
def test_dict_and_tuple_outputs_are_explained_by_their_logits(cls):
    torch.manual_seed(0)
    net, x = cls().eval(), torch.randn(2, 3, 32, 32)
    ours = attribute(net, x, 1).raw
    torch.testing.assert_close(ours, plain_gradient(net, x, lambda s: s[:, 1]), rtol=1e-4, atol=1e-7)
    model = deepinside.load_model(net, input_size=32)
    assert model.scores(x).shape == (2, 4)


def test_output_chooses_another_tensor_and_a_bad_choice_is_one_line():
    torch.manual_seed(0)
    net, x = zoo.TupleOutput().eval(), torch.randn(1, 3, 32, 32)
    model = deepinside.load_model(net, input_size=32, output=lambda out: out[0][:, :2])
    assert model.scores(x).shape == (1, 2)
    with pytest.raises(DeepInsideError, match=r"holds no score tensor at 'nope'.*output="):
        deepinside.load_model(zoo.DictOutput(), input_size=32, output="nope")


def test_a_last_sigmoid_is_left_out_with_the_softmax_warning():
    torch.manual_seed(0)
    net, x = zoo.MultiLabel().eval(), torch.randn(2, 3, 32, 32)
    with pytest.warns(UserWarning, match="ends in sigmoid; using the scores before it"):
        ours = attribute(net, x, 4).raw
    logits = lambda s: torch.logit(s)[:, 4]  # noqa: E731 - the score before the sigmoid
    torch.testing.assert_close(ours, plain_gradient(net, x, logits), rtol=1e-3, atol=1e-6)


def test_layers_are_named_as_in_the_users_network(model):
    torch.manual_seed(0)
    net = zoo.InplaceVgg().eval()
    wrapped, x = deepinside.load_model(net, input_size=32), torch.randn(1, 3, 32, 32)
    by_name = attribute(wrapped, x, 0, "grad-cam", layer="features.4").raw
    torch.testing.assert_close(by_name, attribute(wrapped, x, 0, "grad-cam", layer=net.features[4]).raw)
    torch.testing.assert_close(by_name, attribute(net, x, 0, "grad-cam", layer="features.4").raw)
    with pytest.raises(DeepInsideError, match=r"no layer named 'net.features.4'; closest: features.4"):
        attribute(wrapped, x, 0, "grad-cam", layer="net.features.4")
    with pytest.raises(
        DeepInsideError, match=r"no layer named 'featres'.*last convolutions: features.0, features.4"
    ):
        attribute(wrapped, x, 0, "grad-cam", layer="featres")
    with pytest.raises(DeepInsideError, match="not part of the model"):
        attribute(wrapped, x, 0, "grad-cam", layer=nn.Conv2d(3, 3, 1))
    # The built-in model too: its network's own names.
    builtin_x = torch.zeros(1, 3, 224, 224)
    assert attribute(model, builtin_x, 0, "grad-cam", layer="body._blocks.8").raw.shape == (1, 1, 224, 224)


def test_the_feature_layer_is_found_as_the_last_spatial_map_the_scores_use(model):
    assert model.feature_layer == "features"
    blank = deepinside.load_model(
        model.net, input_size=224, mean=model.preprocessing.mean, std=model.preprocessing.std
    )
    assert blank.find_feature_layer() == "features" and blank.feature_layer_found
    net = zoo.InplaceVgg().eval()
    found = deepinside.load_model(net, input_size=32)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(
        attribute(found, x, 0, "grad-cam").raw, attribute(found, x, 0, "grad-cam", layer="features").raw
    )
    assert found.feature_layer == "features"


class _WithUnusedBranch(nn.Module):
    """An auxiliary branch computed but not scored (Inception's aux head in eval)."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(3, 4, 3, padding=1)
        self.aux = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.main(x)
        self.aux(features.detach())
        return self.fc(features.mean((2, 3)))


def test_a_layer_the_scores_do_not_depend_on_is_not_the_feature_layer():
    found = deepinside.load_model(_WithUnusedBranch().eval(), input_size=16)
    assert found.find_feature_layer() == "main"


def test_score_targets_are_the_papers_s_c_generalised():
    torch.manual_seed(0)
    net, x = zoo.InplaceVgg().eval(), torch.randn(2, 3, 32, 32)
    targets = deepinside.targets
    summed = attribute(net, x, targets.class_sum([1, 3])).raw
    torch.testing.assert_close(
        summed, attribute(net, x, 1).raw + attribute(net, x, 3).raw, rtol=1e-4, atol=1e-7
    )
    by_hand = attribute(net, x, lambda out: out[:, 2] - out[:, 0]).raw
    torch.testing.assert_close(
        by_hand, plain_gradient(net, x, lambda s: s[:, 2] - s[:, 0]), rtol=1e-4, atol=1e-7
    )
    result = attribute(net, x, targets.regression(4), "integrated-gradients", steps=16)
    assert (result.targets == -1).all() and result.completeness_error.max() < 1e-2
    cams = attribute(net, x, targets.class_sum([1, 3]), "grad-cam").raw
    assert cams.shape == (2, 1, 32, 32) and cams.sum() > 0


def test_multilabel_explains_the_classes_over_the_threshold_at_the_image():
    torch.manual_seed(0)
    net, x = zoo.MultiLabel().eval(), torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = torch.logit(net(x)).detach()
        chosen = logits.sigmoid() > 0.5
        ours = attribute(net, x, deepinside.targets.multilabel(0.5)).raw
        smooth = attribute(net, x, deepinside.targets.multilabel(0.5), "smoothgrad", samples=4).raw
    expected = plain_gradient(net, x, lambda s: (torch.logit(s) * chosen).sum(1))
    torch.testing.assert_close(ours, expected, rtol=1e-3, atol=1e-6)
    assert smooth.shape == x.shape


def test_a_region_of_a_segmentation_output_is_explained():
    torch.manual_seed(0)
    net, x = zoo.Segmenter().eval(), torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 16, 16)
    mask[0, :8, :8], mask[1, 8:, 8:] = 1, 1
    ours = attribute(net, x, deepinside.targets.region(2, mask)).raw
    expected = plain_gradient(net, x, lambda out: (out[:, 2] * mask).flatten(1).sum(1))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-7)
    assert ours[0, :, 12:, 12:].abs().sum() == 0  # a 3x3 then 1x1 net sees nothing that far
    with pytest.raises(DeepInsideError, match="not class scores.*score function"):
        attribute(net, x, 2)


def test_an_integrated_gradients_baseline_of_one_image_is_broadcast():
    torch.manual_seed(0)
    net, x = zoo.InplaceVgg().eval(), torch.randn(3, 3, 32, 32)
    baseline = torch.randn(1, 3, 32, 32)
    ours = attribute(net, x, 0, "integrated-gradients", steps=8, baseline=baseline).raw
    each = attribute(net, x, 0, "integrated-gradients", steps=8, baseline=baseline[0]).raw
    torch.testing.assert_close(ours, each)


def test_a_one_channel_model_takes_grey_photos(photos):
    torch.manual_seed(0)
    model = deepinside.load_model(zoo.grey().eval(), input_size=32, mean=[0.5], std=[0.25])
    x, _ = model.prepare([photos["coffee"]])
    assert x.shape == (1, 1, 32, 32)
    grey = torch.from_numpy(np.asarray(photos["coffee"].convert("L").resize((32, 32)), dtype=np.float32))
    assert abs(float(x.mean()) - float((grey / 255 - 0.5).mean() / 0.25)) < 0.05
    assert attribute(model, x, 0, "grad-cam").raw.shape == (1, 1, 32, 32)
    assert deepinside.localize(model, [photos["coffee"]], top_k=1)[0].boxes
    with pytest.raises(DeepInsideError, match="one value per input channel"):
        deepinside.load_model(zoo.grey(), input_size=32, mean=[0.5, 0.5], std=[0.25])


def test_a_pickled_whole_model_as_weights_says_to_save_its_state_dict(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(zoo.InplaceVgg(), path)
    with pytest.raises(DeepInsideError, match=r"a whole model\?.*torch.save\(model.state_dict\(\), PATH\)"):
        deepinside.load_model(zoo.InplaceVgg(), weights=path, input_size=32)
    assert issubclass(pickle.UnpicklingError, Exception)


def test_a_rewrite_that_changes_the_model_is_dropped(monkeypatch):
    """A rewrite proves itself on the model or steps aside: here folding is made
    to break the function, and the maps stay the model's own."""
    from deepinside._core import gradients

    real = gradients.simplify

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        folded = real(*args, **kwargs)
        for m in folded.modules():
            if isinstance(m, nn.Conv2d):
                m.weight = nn.Parameter(m.weight * 2, requires_grad=False)
        return folded

    monkeypatch.setattr(gradients, "simplify", broken)
    torch.manual_seed(0)
    net, x = zoo.InplaceVgg().eval(), torch.randn(2, 3, 32, 32)
    ours = attribute(net, x, 1).raw
    torch.testing.assert_close(ours, plain_gradient(net, x, lambda s: s[:, 1]), rtol=1e-4, atol=1e-7)


def test_the_command_line_on_an_own_cnn_needs_no_feature_layer(tmp_path, photos, monkeypatch, capsys):
    from deepinside.cli import main

    (tmp_path / "vggish.py").write_text(
        "from tests.models.zoo import InplaceVgg\n\ndef build():\n    return InplaceVgg()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save(zoo.InplaceVgg().state_dict(), tmp_path / "w.pt")
    (tmp_path / "c.txt").write_text("cat\ndog\nbird\nfish\nfrog\n")
    photos["chelsea"].save(tmp_path / "cat.jpg")
    own = ["--model", "vggish:build", "--weights", "w.pt", "--classes", "c.txt", "--input-size", "32"]
    assert main(["localize", "cat.jpg", *own, "--config", "paper", "--out", "boxes"]) == 0
    assert (
        main(["saliency", "cat.jpg", *own, "--method", "grad-cam", "--layer", "features.4", "--out", "maps"])
        == 0
    )
    record = json.loads((tmp_path / "maps" / "cat.json").read_text())
    assert record["maps"][0]["layer"] == "features.4"
    assert main(["saliency", "cat.jpg", *own, "--method", "grad-cam", "--layer", "net.features.4"]) == 2
    assert "no layer named 'net.features.4'; closest: features.4" in capsys.readouterr().err
