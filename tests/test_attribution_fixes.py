"""Regressions in attribution: the cached gradient view, compiled models,
SmoothGrad's noise, per-image baselines, NumPy targets and Grad-CAM options.
Tiny hand-built models only."""

import copy
import threading

import numpy as np
import pytest
import torch
from torch import nn

import deepinside
from deepinside.attribution import attribute, saliency
from deepinside.attribution._engine import gradient_view


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)
    ).double()


def _x(batch: int = 2, size: int = 7) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


# 1. The cached private copy: rebuilt when modules change, free of the caller's hooks.


def test_swapping_a_module_without_parameters_rebuilds_the_view():
    net, x = _net(), _x()
    before = saliency(net, x, 1)
    net[1] = nn.Softplus()
    after = saliency(net, x, 1)
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, saliency(copy.deepcopy(net), x, 1), rtol=0, atol=0)


def test_changing_a_hyperparameter_without_tensors_rebuilds_the_view():
    net, x = _net(), _x()
    net[1] = nn.LeakyReLU(0.01)
    saliency(net, x, 1)
    net[1].negative_slope = 0.5
    torch.testing.assert_close(saliency(net, x, 1), saliency(copy.deepcopy(net), x, 1), rtol=0, atol=0)


class _Recorder:
    """Hooks as bound methods of an object that cannot be deep-copied (a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []

    def forward(self, module, inputs, output):
        self.calls.append("forward")
        return output * 2  # would change the map if it ran

    def pre(self, module, inputs):
        self.calls.append("pre")

    def backward(self, module, grad_in, grad_out):
        self.calls.append("backward")


def test_user_hooks_never_run_during_attribution_and_stay_on_the_model():
    net, x = _net(), _x()
    expected = saliency(copy.deepcopy(net), x, 1)
    rec = _Recorder()
    handles = [
        net.register_forward_hook(rec.forward),
        net[0].register_forward_pre_hook(rec.pre),
        net[4].register_full_backward_hook(rec.backward),
    ]
    for method in ("gradient", "guided-backprop", "smoothgrad"):
        attribute(net, x, 1, method, **({"samples": 2} if method == "smoothgrad" else {}))
    torch.testing.assert_close(saliency(net, x, 1), expected, rtol=0, atol=0)
    assert rec.calls == []
    assert not gradient_view(net, x).shared  # copied, hooks and all, without copying the lock
    assert len(net._forward_hooks) == 1 and len(net[0]._forward_pre_hooks) == 1  # the caller's, untouched
    for handle in handles:
        handle.remove()
    saliency(net, x, 1)
    assert rec.calls == []


# 2. Compiled models: the methods that need eager modules say so.


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


# 3. SmoothGrad: the noise depends on the seed only.


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


# 4. Integrated gradients: a per-image baseline with several classes per image.


def test_integrated_gradients_per_image_baseline_with_several_classes_per_image():
    net, x = _net(), _x()
    baseline = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    both = attribute(net, x, [[1, 2], [3, 4]], "integrated-gradients", steps=3, baseline=baseline)
    assert both.raw.shape == (2, 2, 3, 7, 7)
    for k, column in enumerate(([1, 3], [2, 4])):
        one = attribute(net, x, column, "integrated-gradients", steps=3, baseline=baseline)
        torch.testing.assert_close(both.raw[:, k], one.raw)
        torch.testing.assert_close(both.completeness_error[:, k], one.completeness_error)


# 5. NumPy targets.


@pytest.mark.parametrize(
    "target, same",
    [
        (np.int64(2), 2),
        ([np.int64(2), np.int32(1)], [2, 1]),
        (np.array([2, 1]), [2, 1]),
        (np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]]),
    ],
)
def test_numpy_integer_targets(target, same):
    net, x = _net(), _x()
    torch.testing.assert_close(saliency(net, x, target), saliency(net, x, same), rtol=0, atol=0)


@pytest.mark.parametrize("target", [True, np.bool_(True), [True, 1], 2.0, np.array([1.5, 2.0])])
def test_bools_and_fractions_are_no_class(target):
    with pytest.raises(deepinside.DeepInsideError, match="a class is an index or a name"):
        saliency(_net(), _x(), target)


# 6. Options checked before any work.


@pytest.mark.parametrize("method", ["grad-cam", "guided-grad-cam", "gradient", "guided-backprop"])
def test_chunk_must_be_at_least_one(method):
    with pytest.raises(deepinside.DeepInsideError, match="chunk must be a whole number of at least 1, got 0"):
        attribute(_net(), _x(), 1, method, chunk=0, **({"layer": "0"} if "cam" in method else {}))
