"""Class model visualisation on a CUDA GPU: that it runs, whether the same
seed gives the same pictures, the judge's verdict and the speed at three
batch sizes (default preset, 100 classes; EfficientNet-Lite1 judges 8-bit
pictures).

    PYTHONPATH=src python benchmarks/classmodel_gpu_check.py | tee benchmarks/results/classmodel_gpu_check.log
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import deepinside
from deepinside.visualization import visualize_class

print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
m = deepinside.load_model().to("cuda")
judge = deepinside.load_model("efficientnet_lite1").to("cuda").eval()

@torch.no_grad()
def judged(images, targets):
    x = (images * 255).round() / 255
    x = F.interpolate(x, size=judge.preprocessing.input_size, mode="bilinear", antialias=True, align_corners=False)
    p = judge(judge.preprocessing.normalize(x)).softmax(1)
    t = torch.as_tensor(targets, device=p.device)
    return float((p.argmax(1) == t).float().mean()), float(p.gather(1, t[:, None]).mean())

classes16 = list(range(0, 1000, 10))[:16]
torch.cuda.synchronize(); t = time.perf_counter()
a = visualize_class(m, classes16, device="cuda", seed=0)
torch.cuda.synchronize(); ta = time.perf_counter() - t
b = visualize_class(m, classes16, device="cuda", seed=0)
same = torch.equal(a.images, b.images)
print(f"16 classes batch 8: {ta:.1f} s ({ta/16:.2f} s/class), steps {a.log.steps_run.float().mean():.0f}, "
      f"own P_c {a.final_probabilities.mean():.3f}, failures {len(a.failures)}", flush=True)
print(f"same seed twice bit for bit: {same}; max |diff| {float((a.images - b.images).abs().max()):.2e}; "
      f"steps equal {torch.equal(a.log.steps_run, b.log.steps_run)}", flush=True)
print("judge top-1 / mean P on 16:", judged(a.images, classes16), flush=True)
classes = list(range(0, 1000, 10))
for bs in (8, 32, 100):
    torch.cuda.synchronize(); t = time.perf_counter()
    r = visualize_class(m, classes, device="cuda", seed=0, batch_size=bs)
    torch.cuda.synchronize(); s = time.perf_counter() - t
    top1, p = judged(r.images, classes)
    print(f"100 classes batch {bs}: {s:.1f} s ({s/100:.3f} s/class), steps {r.log.steps_run.float().mean():.1f}, "
          f"judge top-1 {top1:.2f} mean P {p:.3f}, peak GPU memory {torch.cuda.max_memory_allocated()/2**30:.1f} GiB",
          flush=True)
