"""The cached gradient view: rebuilt when modules change, free of the caller's hooks."""

import copy
import threading

import torch
from torch import nn

from deepinside._core.gradients import gradient_view
from deepinside.attribution import attribute, saliency

from .conftest import _net, _x


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


def test_the_view_is_proven_on_two_rows_whatever_the_batch(monkeypatch):
    """Building a view runs the model a few times on a probe: two rows of the
    batch, not all of them (a whole batch at 2x made views slow to build)."""
    import torch
    from torch import nn

    from deepinside import attribute
    from deepinside._core import gradients

    seen: list[int] = []
    real = gradients._build_view

    def spy(model, example, signature, keep):  # type: ignore[no-untyped-def]
        seen.append(example.shape[0])
        return real(model, example, signature, keep)

    monkeypatch.setattr(gradients, "_build_view", spy)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    x = torch.randn(32, 3, 8, 8)
    found = attribute(net, x, 1).raw
    assert seen == [2]
    y = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(net(y)[:, 1].sum(), y)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-7)
