"""What runs a model, on a CUDA GPU: whether the same inputs and seed give
the same results bit for bit, how close they come to the CPU's, and the
class model visualisations' judge accuracy and speed (default preset;
EfficientNet-Lite1 judges 8-bit pictures). A report to keep as a log: its
first line is the JSON header every result carries (benchmarks/README.md).

    PYTHONPATH=src python benchmarks/gpu_check.py | tee benchmarks/results/gpu_check.log
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _results import header
from classmodel_quality import classify  # (benchmarks/ is the script's folder)

import deepinside
from deepinside.figures import bundled_photos
from deepinside.visualization import visualize_class

METHODS = ("gradient", "guided-backprop", "smoothgrad", "integrated-gradients", "grad-cam")


def seconds(fn):  # type: ignore[no-untyped-def]
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def saliency_check(model: deepinside.Classifier) -> None:
    inputs, _ = model.prepare(bundled_photos())
    for method in METHODS:
        options = (
            {"samples": 16}
            if method == "smoothgrad"
            else {"steps": 16}
            if method.startswith("integrated")
            else {}
        )
        on_cpu = deepinside.saliency(model, inputs, method=method, **options)
        gpu = model.to("cuda")
        a, took = seconds(lambda: deepinside.saliency(gpu, inputs.cuda(), method=method, **options))
        b = deepinside.saliency(gpu, inputs.cuda(), method=method, **options)
        model.to("cpu")
        gap = float(((a.cpu() - on_cpu).abs().amax((1, 2)) / on_cpu.abs().amax((1, 2))).max())
        print(
            f"  {method}: twice on the GPU bit for bit {torch.equal(a, b)}; "
            f"largest difference from the CPU {gap:.1e} of the map's maximum; "
            f"{took:.2f} s for {len(inputs)} photos",
            flush=True,
        )


def classmodel_check(model: deepinside.Classifier, judge: deepinside.Classifier, batches: list[int]) -> None:
    gpu = model.to("cuda")
    classes16 = list(range(0, 1000, 10))[:16]
    a, took = seconds(lambda: visualize_class(gpu, classes16, device="cuda", seed=0))
    b = visualize_class(gpu, classes16, device="cuda", seed=0)
    largest = float((a.images - b.images).abs().max())
    print(
        f"  16 classes, batch 8, first run: {took:.1f} s; same seed twice bit for bit "
        f"{torch.equal(a.images, b.images)} (largest pixel difference {largest:.2e}, "
        f"early stops equal {torch.equal(a.log.steps_run, b.log.steps_run)})",
        flush=True,
    )
    classes = list(range(0, 1000, 10))
    for batch in batches:
        r, took = seconds(lambda: visualize_class(gpu, classes, device="cuda", seed=0, batch_size=batch))
        verdict = classify(judge, r.images, torch.as_tensor(classes, device=r.images.device))
        top1, p = verdict["top1"], verdict["mean_probability"]
        print(
            f"  100 classes, batch {batch}: {took:.1f} s ({took / 100:.2f} s a class), "
            f"{r.log.steps_run.float().mean():.0f} steps a class, judge top-1 {top1:.2f}, mean P {p:.3f}, "
            f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", type=int, nargs="*", default=[8, 100], help="batch sizes for 100 classes"
    )
    args = parser.parse_args()
    print(json.dumps(header("gpu_check", "cuda")), flush=True)  # the header every result carries
    model = deepinside.load_model()
    judge = deepinside.load_model("efficientnet_lite1").to("cuda").eval()
    print("saliency (the bundled demo photos):", flush=True)
    saliency_check(model)
    print("class model visualisation (default preset):", flush=True)
    classmodel_check(model, judge, args.batches)


if __name__ == "__main__":
    main()
