"""Classes per batch chosen for the device: 8 on the CPU as before, on CUDA
from the GPU's total memory (so a resumed run gets the same batches)."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from deepinside.visualization.batch_size import default_batch_size


def test_the_cpu_keeps_batches_of_eight():
    assert default_batch_size("cpu") == 8
    assert default_batch_size(torch.device("cpu"), (512, 512)) == 8


def test_a_gpu_batch_grows_with_its_memory_and_shrinks_with_the_picture(monkeypatch):
    memory = {"n": 0}
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda _device: SimpleNamespace(total_memory=memory["n"])
    )
    sizes = {}
    for gib in (4, 16, 80, 141):
        memory["n"] = gib * 2**30
        sizes[gib] = default_batch_size("cuda")
    assert sizes[4] == 32 and sizes[16] == 128  # half the memory at 64 MiB a class at 224 px
    assert sizes[80] == sizes[141] == 250  # an H100 or H200: 1000 classes in four batches
    memory["n"] = 16 * 2**30
    assert default_batch_size("cuda", (448, 448)) == 32  # four times the pixels
    memory["n"] = 1 * 2**30
    assert default_batch_size("cuda") == 8  # never below the CPU's
