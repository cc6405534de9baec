"""Every public call is safe from several threads at once on one shared model:
each thread gets exactly the results a serial call gives."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import deepinside
from deepinside.attribution import METHODS
from deepinside.attribution.methods import cheap_options
from deepinside.evaluation import cascading_randomization, deletion_insertion

from .conftest import cnn_or_vit

#: Slow (a real browser, a Ray instance, many threads, the whole matrix): `make test-fast` skips it.
pytestmark = pytest.mark.slow

# Few samples and steps: the point is concurrency, not the methods' quality.
OPTIONS = {name: cheap_options(method) for name, method in METHODS.items()}


def at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread, all released together."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> object:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


@pytest.mark.parametrize("needs_attention", [False, True])
def test_every_method_from_many_threads_gives_the_serial_maps(model, batch, needs_attention, request):
    methods = [m for m, cls in METHODS.items() if ("attention" in cls.needs) == needs_attention]
    model, batch, _ = cnn_or_vit(methods[0], model, batch, request)
    # The layer-hook methods twice over: their hook is what broke.
    names = [*methods, *(m for m in methods if "feature layer" in METHODS[m].needs), methods[0]]
    serial = {m: deepinside.attribute(model, batch, method=m, **OPTIONS.get(m, {})) for m in methods}

    def job(method: str) -> Callable[[], list[deepinside.Attribution]]:
        return lambda: [
            deepinside.attribute(model, batch, method=method, **OPTIONS.get(method, {})) for _ in range(2)
        ]

    for method, results in zip(names, at_once([job(m) for m in names])):
        for found in results:  # type: ignore[union-attr]
            want = serial[method]
            assert torch.equal(found.raw, want.raw), method
            assert torch.equal(found.scores, want.scores) and torch.equal(found.targets, want.targets), method
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


def test_localize_and_evaluation_from_threads_give_the_serial_results(model, photos, batch):
    photo = photos["chelsea"]
    targets = torch.tensor([285, 967])
    maps = deepinside.saliency(model, batch, targets)

    def boxes():
        return [(b.box, b.mask.tobytes()) for b in deepinside.localize(model, [photo], 2, "paper")[0].boxes]

    def curves():
        c = deletion_insertion(model, batch[:1], maps[:1], targets[:1], steps=4)
        return c.deletion, c.insertion

    def sanity():
        r = cascading_randomization(model, batch[:1], targets[:1], "gradient", checkpoints=1)
        return r.spearman, r.ssim

    jobs = [boxes, curves, sanity] * 2
    serial = [job() for job in jobs[:3]]
    for i, found in enumerate(at_once(jobs)):
        want = serial[i % 3]
        if i % 3 == 0:
            assert found == want
        else:
            assert all(torch.equal(a, b) for a, b in zip(found, want))  # type: ignore[arg-type]


def test_a_model_in_training_mode_shared_by_threads_stays_in_training_mode(model, batch):
    net, batch = copy.deepcopy(model).train(), batch[:1]
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    serial = net.scores(batch), deepinside.saliency(net, batch)
    # Before eval mode was counted per module, one thread put the model back in
    # training mode under another's forward pass (batch statistics: other scores).
    for scores, maps in at_once([lambda: (net.scores(batch), deepinside.saliency(net, batch))] * 6):  # type: ignore[misc]
        assert torch.equal(scores, serial[0]) and torch.equal(maps, serial[1])
    assert all(m.training for m in net.modules())
    assert all(torch.equal(v, stats[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("deterministic", [False, True])
def test_deterministic_is_per_call_not_per_thread_pool(model, batch, monkeypatch, deterministic):
    """A deterministic call in one thread asks the engine for repeatable
    gradients; a plain call in another thread at the same time does not."""
    from deepinside._core import gradients

    seen: list[tuple[str, bool]] = []
    real = gradients.cuda_flags

    def spy(device: torch.device, repeat: bool = False):  # type: ignore[no-untyped-def]
        seen.append((threading.current_thread().name, repeat))
        return real(device, repeat)

    monkeypatch.setattr(gradients, "cuda_flags", spy)

    def ours() -> str:
        deepinside.saliency(model, batch[:1], deterministic=deterministic)
        return threading.current_thread().name

    def plain() -> str:
        deepinside.saliency(model, batch[:1])
        return threading.current_thread().name

    mine, other = at_once([ours, plain])
    assert {r for name, r in seen if name == mine} == {deterministic}
    assert {r for name, r in seen if name == other} == {False}
