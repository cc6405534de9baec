"""No public call changes the caller's model or tensors, on success or error."""

import pytest
import torch
from torch import nn

import deepinside
import deepinside.attribution
from deepinside import saliency
from deepinside.attribution.methods import cheap_options

from .conftest import cnn_or_vit


def _hook_counts(model: nn.Module) -> list[int]:
    return [
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    ]


def _state(model: nn.Module, x: torch.Tensor) -> dict[str, object]:
    return {
        "training": [m.training for m in model.modules()],
        "param_grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": _hook_counts(model),
        "weights": [p.detach().clone() for p in model.parameters()],
        "x_requires_grad": x.requires_grad,
        "x_grad": x.grad,
        "x_value": x.detach().clone(),
    }


def _assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    for key in before:
        b, a = before[key], after[key]
        if isinstance(b, list) and b and isinstance(b[0], torch.Tensor):
            assert all(torch.equal(u, v) for u, v in zip(b, a)), key
        elif isinstance(b, torch.Tensor):
            assert torch.equal(b, a), key
        else:
            assert b == a, key


@pytest.mark.parametrize("training", [False, True])
def test_success_leaves_everything_as_it_was(model, batch, training):
    model.train(training)
    try:
        x = batch.clone()
        before = _state(model, x)
        saliency(model, x)
        saliency(model, x, [[1, 2]] * 2)
        _assert_same(before, _state(model, x))
    finally:
        model.eval()


def test_input_that_requires_grad_keeps_its_grad(model, batch):
    x = batch.clone().requires_grad_(True)
    x.grad = torch.ones_like(x)
    before = _state(model, x)
    saliency(model, x)
    _assert_same(before, _state(model, x))


def test_error_leaves_everything_as_it_was(model, batch):
    model.train(True)
    try:
        x = batch.clone()
        before = _state(model, x)
        with pytest.raises(deepinside.DeepInsideError):
            saliency(model, x, 5000)
        _assert_same(before, _state(model, x))
    finally:
        model.eval()


def test_model_that_raises_in_forward_is_left_clean():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x):
            raise RuntimeError("boom")

    net = Broken().train()
    x = torch.randn(1, 3, 8, 8)
    before = _state(net, x)
    with pytest.raises(RuntimeError, match="boom"):
        saliency(net, x)
    _assert_same(before, _state(net, x))


def test_works_under_no_grad_and_inference_mode(model, batch):
    expected = saliency(model, batch)
    with torch.no_grad():
        torch.testing.assert_close(saliency(model, batch), expected)
    with torch.inference_mode():
        x = batch.clone()
        torch.testing.assert_close(saliency(model, x), expected)


def test_users_hooks_are_neither_removed_nor_added(model, batch):
    calls = []
    handle = model.net.features.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        before = _hook_counts(model)
        saliency(model, batch)
        assert _hook_counts(model) == before
    finally:
        handle.remove()


def test_view_is_rebuilt_when_weights_change():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)
    ).eval()
    x = torch.randn(1, 3, 8, 8)
    first = saliency(net, x, 0)
    with torch.no_grad():
        net[0].weight.mul_(-2.0)
    second = saliency(net, x, 0)
    x_ref = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(net(x_ref)[0, 0], x_ref)
    torch.testing.assert_close(second, ref.abs().amax(1), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("method", list(deepinside.attribution.METHODS))
def test_every_method_leaves_the_model_as_it_was(model, batch, method, request):
    model, batch, _ = cnn_or_vit(method, model, batch, request)
    cheap = cheap_options(deepinside.attribution.METHODS[method])
    model.train(True)
    try:
        x = batch.clone().requires_grad_(True)
        before = _state(model, x)
        deepinside.attribute(model, x, None, method, **cheap)
        _assert_same(before, _state(model, x))
        with pytest.raises(deepinside.DeepInsideError):
            deepinside.attribute(model, x, 5000, method, **cheap)
        _assert_same(before, _state(model, x))
    finally:
        model.eval()


def test_grad_cam_on_an_uncopyable_model_removes_its_hook():
    """A model deepcopy refuses is used as it is: the layer hook must go, even on error."""

    class Uncopyable(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.conv(x).relu().mean((2, 3)))

        def __deepcopy__(self, memo):
            raise TypeError("no copies")

    net = Uncopyable().train()
    x = torch.randn(1, 3, 8, 8)
    before = _state(net, x)
    deepinside.attribute(net, x, 1, "grad-cam", layer="conv")
    _assert_same(before, _state(net, x))
    with pytest.raises(deepinside.DeepInsideError):
        deepinside.attribute(net, x, 9, "grad-cam", layer="conv")
    _assert_same(before, _state(net, x))
