"""The process-wide numeric flags on CUDA (cuDNN, TF32): ours while our calls
run, the caller's afterwards, also with calls overlapping in several threads.
The flags exist without a GPU, so all but the last test run on the CPU."""

from __future__ import annotations

import copy
import random
import threading

import pytest
import torch

import deepinside
from deepinside._core import precision
from deepinside._core.gradients import gradient_view
from deepinside._core.precision import Rewrites, cuda_flags, our_flags, read_flags, write_flags

from ..conftest import agreement

CUDA = torch.device("cuda")  # only a device name: no GPU needed to set the flags


@pytest.fixture
def callers_flags():
    """An unusual setting of the caller's (TF32 on everywhere, cuDNN off, its
    deterministic algorithms on), put back as it was after the test."""
    before = read_flags()
    unusual = {k: (not v if isinstance(v, bool) else "tf32") for k, v in before.items()}
    write_flags(unusual)
    yield read_flags()
    write_flags(before)


def test_our_flags_inside_and_the_callers_after(callers_flags):
    with cuda_flags(CUDA):
        assert read_flags() == callers_flags | our_flags(deterministic=False)
        assert torch.backends.cudnn.enabled
        assert torch.backends.cudnn.deterministic  # the caller's choice of algorithms stands
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert read_flags() == callers_flags


def test_nothing_changes_for_the_cpu(callers_flags):
    with cuda_flags(torch.device("cpu"), deterministic=True):
        assert read_flags() == callers_flags


def test_deterministic_calls_turn_cudnn_off_for_as_long_as_one_runs(callers_flags, monkeypatch):
    fast, steady = cuda_flags(CUDA), cuda_flags(CUDA, deterministic=True)
    fast.__enter__()
    assert torch.backends.cudnn.enabled
    steady.__enter__()
    assert not torch.backends.cudnn.enabled  # while a deterministic call runs, every call is
    steady.__exit__(None, None, None)
    assert read_flags() == callers_flags | our_flags(deterministic=False)
    fast.__exit__(None, None, None)
    assert read_flags() == callers_flags
    monkeypatch.setattr(precision, "DETERMINISTIC_CUDA", "cudnn-deterministic")
    torch.backends.cudnn.deterministic = False
    with cuda_flags(CUDA, deterministic=True):
        assert torch.backends.cudnn.enabled and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    assert read_flags() == callers_flags


def test_overlapping_calls_leave_in_any_order(callers_flags):
    first, second = cuda_flags(CUDA), cuda_flags(CUDA)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first in leaves first: the flags stay ours
    assert read_flags() == callers_flags | our_flags(deterministic=False)
    second.__exit__(None, None, None)
    assert read_flags() == callers_flags


def test_many_threads_entering_and_leaving_restore_the_callers_flags(callers_flags):
    start, wrong = threading.Barrier(8), []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(200):
            deterministic = rng.random() < 0.3
            with cuda_flags(CUDA, deterministic):
                now = read_flags()
                # Ours, deterministic or not depending on the others; never the caller's.
                ours = [callers_flags | our_flags(d) for d in (False, True)]
                if now not in ours or (deterministic and now != ours[1]):
                    wrong.append(now)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
    assert read_flags() == callers_flags


def test_public_calls_from_threads_leave_the_flags_as_they_were(model, batch, callers_flags):
    x = batch[:1]

    def calls() -> None:
        deepinside.saliency(model, x, method="grad-cam")
        deepinside.saliency(model, x, deterministic=True)

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert read_flags() == callers_flags


def test_deterministic_maps_on_the_cpu_are_the_usual_ones_bit_for_bit(model, batch):
    for method in ("gradient", "grad-cam"):
        usual = deepinside.saliency(model, batch, method=method)
        assert torch.equal(deepinside.saliency(model, batch, method=method, deterministic=True), usual)
        assert torch.equal(deepinside.saliency(model, batch, method=method, deterministic=True), usual)


def test_the_view_uses_the_rewrites_its_device_type_is_given(model, batch, monkeypatch):
    net = copy.deepcopy(model)
    assert precision.rewrites_for(torch.device("cpu")).channels_last
    assert not precision.rewrites_for(CUDA).channels_last
    fast = gradient_view(net, batch)
    assert fast.channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.module.modules())
    usual = deepinside.saliency(net, batch)
    # Flipping an entry takes effect at the next call: the cached view is rebuilt.
    monkeypatch.setitem(precision.REWRITES, "cpu", Rewrites(False, False, False))
    plain = gradient_view(net, batch)
    assert not plain.channels_last
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.module.modules())
    # The same maps up to float round-off (a rectifier near its kink may open in one and not the other).
    worst, within_1_percent, correlation = agreement(deepinside.saliency(net, batch), usual)
    assert worst < 0.02 and within_1_percent > 0.999 and correlation > 0.9999


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_deterministic_maps_repeat_and_the_flags_come_back(model, batch):
    gpu, x = copy.deepcopy(model).cuda(), batch.cuda()
    before = read_flags()
    truth = deepinside.saliency(copy.deepcopy(model).double().cuda(), x.double())
    for deterministic in (False, True):
        a = deepinside.saliency(gpu, x, deterministic=deterministic)
        worst = ((a.double() - truth).abs().amax((1, 2)) / truth.abs().amax((1, 2))).max()
        assert worst < 0.005  # TF32 off: within 0.5% of the float64 maps
        if deterministic:
            assert torch.equal(a, deepinside.saliency(gpu, x, deterministic=True))
    assert read_flags() == before
