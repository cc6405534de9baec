"""The attribution family: the paper's section 4 worked by hand, the backward
rules on every kind of rectifier, and Captum as the oracle on the real model."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from torch import nn

import deepinside
from deepinside.attribution import METHODS, attribute, reduce_channels, saliency
from deepinside.attribution.methods import cheap_options

from ..conftest import agreement
from .conftest import _net, _x, cnn_or_vit


def _conv_relu_pool(relu: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU() if relu else nn.Identity(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 4),
    ).double()


def _by_hand(net: nn.Sequential, x: torch.Tensor, c: int, rule: str) -> torch.Tensor:
    """Backward written out as the paper's section 4 describes it: the linear
    layer's transpose, the max-pool 'switches', the rectifier rule, then
    convolution with the flipped kernel (a transposed convolution)."""
    conv, fc = net[0], net[4]
    pre = conv(x)
    _, switches = F.max_pool2d(pre.clamp(min=0), 2, return_indices=True)
    g = fc.weight[c].view(1, 3, 3, 3)
    g = F.max_unpool2d(g, switches, 2, output_size=pre.shape[-2:])
    if rule in ("deconvnet", "guided"):
        g = g.clamp(min=0)
    if rule in ("gradient", "guided"):
        g = g * (pre > 0)
    return F.conv_transpose2d(g, conv.weight, padding=1).detach()


@pytest.mark.parametrize(
    "rule, method", [("gradient", "gradient"), ("deconvnet", "deconvnet"), ("guided", "guided-backprop")]
)
def test_section4_gradient_deconvnet_guided_by_hand(rule, method):
    net = _conv_relu_pool()
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    for c in range(4):
        ours = attribute(net, x, c, method).raw
        torch.testing.assert_close(ours, _by_hand(net, x, c, rule), rtol=1e-10, atol=1e-12)


def test_section4_without_rectifiers_the_three_coincide():
    net = _conv_relu_pool(relu=False)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no ReLU-like units" is the point here
        maps = [attribute(net, x, 1, m).raw for m in ("gradient", "deconvnet", "guided-backprop")]
    torch.testing.assert_close(maps[0], maps[1], rtol=0, atol=0)
    torch.testing.assert_close(maps[0], maps[2], rtol=0, atol=0)
    # ...and with them they differ.
    net = _conv_relu_pool()
    assert not torch.allclose(
        attribute(net, x, 1, "gradient").raw, attribute(net, x, 1, "guided-backprop").raw
    )


class _FunctionalRelus(nn.Module):
    """The same network as an nn.ReLU Sequential, but with every other way to
    write a rectifier: F.relu, in-place relu_, ReLU6 module, clamp(min=0)."""

    def __init__(self, ref: nn.Sequential):
        super().__init__()
        self.c1, self.c2, self.c3, self.fc = ref[0], ref[2], ref[4], ref[7]
        self.relu6 = nn.ReLU6()

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = self.c2(x).relu_()
        x = self.relu6(self.c3(x) * 0.01) * 100.0  # far below 6: acts as a ReLU
        return self.fc(torch.clamp(F.adaptive_avg_pool2d(x, 2), min=0).flatten(1))


@pytest.mark.parametrize(
    "method, captum", [("guided-backprop", GuidedBackprop), ("deconvnet", Deconvolution)]
)
def test_rules_hold_for_functional_inplace_relu6_and_clamp(method, captum):
    torch.manual_seed(1)
    ref = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
    )
    ref = nn.Sequential(*ref[:6], ref[6], nn.ReLU(), *ref[7:])  # clamp after pooling in the functional twin
    functional = _FunctionalRelus(
        nn.Sequential(ref[0], ref[1], ref[2], ref[3], ref[4], ref[5], ref[6], ref[9])
    )
    x = torch.randn(2, 3, 12, 12)
    expected = captum(ref).attribute(x, target=[0, 2])
    torch.testing.assert_close(attribute(functional, x, [0, 2], method).raw, expected, rtol=1e-4, atol=1e-6)


def _relu_variant(model: nn.Module) -> nn.Module:
    """The built-in architecture with nn.ReLU for ReLU6, so that Captum's
    module-hook rules can act as an oracle on a full-size network."""
    twin = copy.deepcopy(model)
    for parent in twin.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, nn.ReLU())
    return twin


@pytest.fixture(scope="module")
def photo_batch(model, photos):
    x, _ = model.prepare([photos["chelsea"], photos["coffee"]])
    return x, torch.tensor([285, 967])


def _assert_agrees(ours: torch.Tensor, ref: torch.Tensor) -> None:
    for a, b in zip(ours, ref):
        _, within, corr = agreement(a, b)
        assert within > 0.999 and corr > 0.9999


@pytest.mark.parametrize(
    "method, oracle", [("guided-backprop", GuidedBackprop), ("deconvnet", Deconvolution)]
)
def test_guided_and_deconvnet_match_captum_on_the_full_architecture(model, photo_batch, method, oracle):
    x, t = photo_batch
    twin = _relu_variant(model)
    _assert_agrees(attribute(twin, x, t, method).raw, oracle(twin).attribute(x, target=t))


def test_guided_backprop_sees_the_builtin_relu6_where_captum_does_not(model, photo_batch):
    x, t = photo_batch
    plain = attribute(model, x, t).raw
    captum_guided = GuidedBackprop(model).attribute(x, target=t)  # hooks only nn.ReLU: plain gradient
    _assert_agrees(captum_guided, plain)
    ours = attribute(model, x, t, "guided-backprop").raw
    assert agreement(ours[0], plain[0])[2] < 0.5


def test_gradient_x_input_matches_captum(model, photo_batch):
    x, t = photo_batch
    _assert_agrees(
        attribute(model, x, t, "gradient-x-input").raw, InputXGradient(model).attribute(x, target=t)
    )


def test_integrated_gradients_matches_captum_and_reports_completeness(model, photo_batch):
    x, t = photo_batch
    ours = attribute(model, x, t, "integrated-gradients", steps=16)
    ref = IntegratedGradients(model).attribute(x, target=t, n_steps=16, internal_batch_size=16)
    _assert_agrees(ours.raw, ref)
    with torch.no_grad():
        gap = model(x).gather(1, t[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
    torch.testing.assert_close(
        ours.completeness_error, (ours.raw.flatten(1).sum(1) - gap).abs(), rtol=1e-3, atol=1e-3
    )


def test_integrated_gradients_is_complete_on_a_linear_model():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    baseline = torch.randn(3, 2, 2, dtype=torch.float64)
    found = attribute(net, x, 1, "integrated-gradients", steps=3, baseline=baseline)
    assert float(found.completeness_error.max()) < 1e-12
    trapezoid = attribute(net, x, 1, "integrated-gradients", steps=2, rule="trapezoid", baseline=baseline)
    torch.testing.assert_close(trapezoid.raw, found.raw)


@pytest.mark.parametrize(
    "variant, nt_type", [("mean", "smoothgrad"), ("squared", "smoothgrad_sq"), ("vargrad", "vargrad")]
)
def test_smoothgrad_variants_match_captum_with_the_same_noise(model, photo_batch, variant, nt_type):
    x, t = photo_batch[0][:1], photo_batch[1][:1]
    span = float(x.max() - x.min())
    ours = attribute(model, x, t, "smoothgrad", samples=7, noise=0.15, variant=variant, seed=0, chunk=4).raw
    with torch.random.fork_rng():
        torch.manual_seed(0)  # Captum draws its noise from the global generator, in the same order
        ref = NoiseTunnel(Saliency(model)).attribute(
            x, target=t, nt_type=nt_type, nt_samples=7, stdevs=0.15 * span, abs=False, nt_samples_batch_size=3
        )
    _assert_agrees(ours, ref)


def test_smoothgrad_does_not_depend_on_the_chunk_size(model, photo_batch):
    x, t = photo_batch
    a = attribute(model, x, t, "smoothgrad", samples=6, chunk=4).raw
    b = attribute(model, x, t, "smoothgrad", samples=6, chunk=12).raw
    _assert_agrees(a, b)


def test_grad_cam_and_guided_grad_cam_match_captum(model, photo_batch):
    x, t = photo_batch
    cam = attribute(model, x, t, "grad-cam")
    ref = LayerAttribution.interpolate(
        LayerGradCam(model, model.net.features).attribute(x, target=t, relu_attributions=True),
        (224, 224),
        "bilinear",
    )
    assert cam.raw.shape == (2, 1, 224, 224)
    _assert_agrees(cam.raw, ref)
    twin = _relu_variant(model)
    guided = GuidedGradCam(twin, twin.net.features).attribute(x, target=t, interpolate_mode="bilinear")
    _assert_agrees(attribute(twin, x, t, "guided-grad-cam").raw, guided)


def test_grad_cam_on_a_named_layer_of_a_plain_module():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ).eval()
    x = torch.randn(1, 3, 10, 10)
    cam = attribute(net, x, 1, "grad-cam", layer="0").raw  # the conv, before its batch norm
    ref = LayerAttribution.interpolate(
        LayerGradCam(net, net[0]).attribute(x, target=1, relu_attributions=True), (10, 10), "bilinear"
    )
    torch.testing.assert_close(cam, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_gives_raw_and_reduced_maps_for_several_classes(model, batch, name, request):
    net, x, classes = cnn_or_vit(name, model, batch, request)
    found = attribute(net, x, [classes] * 2, name, **cheap_options(METHODS[name]))
    size = x.shape[-1]
    assert found.map.shape == (2, 2, size, size)
    assert found.raw.shape[:2] == (2, 2) and found.raw.shape[-2:] == (size, size)
    assert torch.isfinite(found.raw).all()


def test_channel_reductions():
    raw = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])
    assert reduce_channels(raw, "max-abs").item() == 3.0
    assert reduce_channels(raw, "sum-abs").item() == 6.0
    assert reduce_channels(raw, "sum").item() == 0.0
    assert reduce_channels(raw, "l2").item() == pytest.approx(14**0.5)


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("nope", {}, "unknown method 'nope': use one of gradient"),
        ("smoothgrad", {"samples": 0}, "samples must be a whole number of at least 1"),
        ("integrated-gradients", {"steps": 0}, "steps must be"),
        ("integrated-gradients", {"baseline": torch.zeros(3, 5, 5)}, "baseline of shape"),
        ("gradient", {"samples": 3}, "gradient takes no option 'samples'"),
    ],
)
def test_bad_method_options(model, photo_batch, method, options, message):
    with pytest.raises(deepinside.DeepInsideError, match=message):
        attribute(model, photo_batch[0], None, method, **options)


def test_grad_cam_without_a_declared_layer_finds_the_last_feature_map():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(1, 3, 8, 8)
    found = attribute(net, x, 0, "grad-cam").raw
    torch.testing.assert_close(found, attribute(net, x, 0, "grad-cam", layer="0").raw)
    torch.testing.assert_close(found, attribute(net, x, 0, "grad-cam", layer=net[0]).raw)
    with pytest.raises(deepinside.DeepInsideError, match="no layer named 'nope'.*last convolutions: 0"):
        attribute(net, x, 0, "grad-cam", layer="nope")


def test_unknown_reduction(model, photo_batch):
    with pytest.raises(deepinside.DeepInsideError, match="unknown channel reduction"):
        attribute(model, photo_batch[0], None, reduce="mean")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_rule_and_cam_methods_refuse_torchscript_in_one_line():
    net, x = _net(), _x()
    scripted = torch.jit.script(net)
    for model in (scripted, nn.Sequential(scripted)):  # also when wrapped in an eager module
        for method in ("deconvnet", "guided-backprop", "grad-cam", "guided-grad-cam"):
            options = {"layer": "0"} if "cam" in method else {}
            expected = f"^{method} needs an eager PyTorch module.*TorchScript"
            with pytest.raises(deepinside.DeepInsideError, match=expected) as err:
                attribute(model, x, 1, method, **options)
            assert "\n" not in str(err.value) and "smoothgrad" in str(err.value)
    # The plain gradient methods work, and agree with the eager model.
    torch.testing.assert_close(saliency(scripted, x, 1), saliency(net, x, 1))


def test_rule_methods_refuse_a_torch_export_program():
    net, x = _net(), _x()
    exported = torch.export.export(net, (x,)).module()
    with pytest.raises(deepinside.DeepInsideError, match="guided-backprop needs an eager.*torch.export"):
        attribute(exported, x, 1, "guided-backprop")
    # An fx graph traced from Python still calls the rectifiers: not refused.
    traced = torch.fx.symbolic_trace(net)
    guided = attribute(net, x, 1, "guided-backprop").raw
    torch.testing.assert_close(attribute(traced, x, 1, "guided-backprop").raw, guided)


def test_no_rectifier_warning_says_none_were_seen():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double()
    with pytest.warns(UserWarning, match="no rectifier calls .* were seen"):
        attribute(net, torch.randn(1, 3, 2, 2, dtype=torch.float64), 1, "deconvnet")


def test_smoothgrad_map_does_not_depend_on_chunk_size():
    net, x = _net(), _x()
    a = attribute(net, x, [1, 2], "smoothgrad", samples=5, chunk=3).raw
    b = attribute(net, x, [1, 2], "smoothgrad", samples=5, chunk=16).raw
    assert torch.equal(a, b)


def test_smoothgrad_map_does_not_depend_on_the_batch():
    net, x = _net(), _x()
    pair = attribute(net, x, 1, "smoothgrad", samples=5, variant="vargrad").raw
    for i in range(2):
        alone = attribute(net, x[i : i + 1], 1, "smoothgrad", samples=5, variant="vargrad").raw
        assert torch.equal(alone[0], pair[i])
    assert not torch.equal(pair, attribute(net, x, 1, "smoothgrad", samples=5, variant="vargrad", seed=1).raw)


def test_integrated_gradients_per_image_baseline_with_several_classes_per_image():
    net, x = _net(), _x()
    baseline = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    both = attribute(net, x, [[1, 2], [3, 4]], "integrated-gradients", steps=3, baseline=baseline)
    assert both.raw.shape == (2, 2, 3, 7, 7)
    for k, column in enumerate(([1, 3], [2, 4])):
        one = attribute(net, x, column, "integrated-gradients", steps=3, baseline=baseline)
        torch.testing.assert_close(both.raw[:, k], one.raw)
        torch.testing.assert_close(both.completeness_error[:, k], one.completeness_error)


@pytest.mark.parametrize("method", ["grad-cam", "guided-grad-cam", "gradient", "guided-backprop"])
def test_chunk_must_be_at_least_one(method):
    with pytest.raises(deepinside.DeepInsideError, match="chunk must be a whole number of at least 1, got 0"):
        attribute(_net(), _x(), 1, method, chunk=0, **({"layer": "0"} if "cam" in method else {}))
