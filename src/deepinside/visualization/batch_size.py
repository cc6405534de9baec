"""How many classes to optimise at once on a device.

On the CPU a batch of 8 keeps the cores busy (larger batches measured no
faster there). A GPU runs faster the more classes share each pass, up to
its memory, so the batch is what a measured memory per class allows
(docs/gpu.md gives the measurement). The choice depends only on the
device's total memory and the picture size, not on what is free at the
moment, so a run resumed on the same GPU gets the same batches (a job's
folder keeps its batch size).
"""

from __future__ import annotations

import torch

#: Classes per batch on the CPU.
CPU_BATCH = 8
#: GPU memory a class takes at 224 px with the default preset (a measured
#: peak per class, rounded up: docs/gpu.md).
_BYTES_PER_CLASS_224 = 64 * 2**20
#: The share of the GPU's memory the batch may plan on (other models, cuDNN
#: workspaces and larger networks than Lite0 take the rest).
_MEMORY_SHARE = 0.5
#: The most classes per batch: 1000 classes in four batches. Larger batches are unmeasured.
_MOST = 250


def default_batch_size(device: torch.device | str, size: tuple[int, int] = (224, 224)) -> int:
    """Classes per batch for pictures of ``size`` (H, W) on ``device``: 8 on
    the CPU (and on devices whose memory torch cannot tell), on CUDA as many
    as half the GPU's memory holds, between 8 and 250."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH
    total = torch.cuda.get_device_properties(device).total_memory
    per_class = _BYTES_PER_CLASS_224 * (size[0] * size[1]) / (224 * 224)
    return max(CPU_BATCH, min(_MOST, int(_MEMORY_SHARE * total / per_class)))
