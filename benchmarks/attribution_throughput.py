"""Attribution throughput and peak memory: deepinside vs Captum, same inputs, same run.

One image by default, so that SmoothGrad's noise is the same in both libraries
and the maps can be compared. Each (library, method) runs in a fresh
subprocess so that its peak resident memory is its own.

    python benchmarks/attribution_throughput.py [--batch 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
from _results import write_results

ROWS_PER_PASS = 16  # images x samples (or steps) per forward/backward, for both libraries
METHODS = ["gradient", "smoothgrad", "integrated-gradients", "guided-backprop", "grad-cam"]


def _inputs(batch: int):
    from PIL import Image
    from skimage import data

    import deepinside

    model = deepinside.load_model()
    photos = [Image.fromarray(getattr(data, n)()) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    x, _ = model.prepare((photos * batch)[:batch])
    with torch.no_grad():
        t = model(x).argmax(1)
    return model, x, t


def _ours(model, x, t, method):
    import deepinside

    options = {
        "smoothgrad": {"samples": 50, "noise": 0.15, "chunk": ROWS_PER_PASS},
        "integrated-gradients": {"steps": 50, "chunk": ROWS_PER_PASS},
        "grad-cam": {"chunk": ROWS_PER_PASS},
    }.get(method, {})
    return lambda: deepinside.attribute(model, x, t, method, **options).raw


def _captum(model, x, t, method):
    from captum.attr import (
        GuidedBackprop,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Saliency,
    )

    span = float(x.max() - x.min())
    b = x.shape[0]
    if method == "gradient":
        return lambda: Saliency(model).attribute(x, target=t, abs=False)
    if method == "smoothgrad":
        return lambda: NoiseTunnel(Saliency(model)).attribute(
            x,
            target=t,
            nt_type="smoothgrad",
            nt_samples=50,
            stdevs=0.15 * span,
            abs=False,
            nt_samples_batch_size=max(1, ROWS_PER_PASS // b),
        )
    if method == "integrated-gradients":
        return lambda: IntegratedGradients(model).attribute(
            x, target=t, n_steps=50, internal_batch_size=ROWS_PER_PASS
        )
    if method == "guided-backprop":
        return lambda: GuidedBackprop(model).attribute(x, target=t)
    return lambda: LayerAttribution.interpolate(
        LayerGradCam(model, model.net.features).attribute(x, target=t, relu_attributions=True),
        x.shape[-2:],
        "bilinear",
    )


def measure_one(library: str, method: str, batch: int, repeats: int, out: Path) -> None:
    warnings.filterwarnings("ignore")
    model, x, t = _inputs(batch)
    fn = (_ours if library == "deepinside" else _captum)(model, x, t, method)
    result = fn()  # warm-up (and, for deepinside, building the gradient view)
    times = []
    for _ in range(repeats):
        torch.manual_seed(0)
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    torch.save(result.detach(), out)
    print(
        json.dumps(
            {
                "seconds": sorted(times)[len(times) // 2],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/attribution_throughput.json"))
    parser.add_argument("--one", nargs=2, metavar=("LIBRARY", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(*args.one, args.batch, args.repeats, args.out)
        return
    rows = []
    tmp = args.json.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for method in args.methods:
        found = {}
        for library in ("deepinside", "captum"):
            out = tmp / f"{library}-{method}.pt"
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    library,
                    method,
                    "--batch",
                    str(args.batch),
                    "--repeats",
                    str(args.repeats),
                    "--out",
                    str(out),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            found[library] = json.loads(run.stdout.strip().splitlines()[-1])
            found[library]["result"] = torch.load(out)
        ours, ref = found["deepinside"]["result"].double(), found["captum"]["result"].double()
        maps_ours, maps_ref = ours.abs().amax(1), ref.abs().amax(1)
        corr = min(
            float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
            for a, b in zip(maps_ours, maps_ref)
        )
        rows.append(
            {
                "method": method,
                "batch": args.batch,
                "deepinside_images_per_s": args.batch / found["deepinside"]["seconds"],
                "captum_images_per_s": args.batch / found["captum"]["seconds"],
                "speedup": found["captum"]["seconds"] / found["deepinside"]["seconds"],
                "deepinside_peak_rss_mb": found["deepinside"]["peak_rss_mb"],
                "captum_peak_rss_mb": found["captum"]["peak_rss_mb"],
                "map_correlation": corr,
            }
        )
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    print(
        f"EfficientNet-Lite0, 224 px, batch {args.batch}, {ROWS_PER_PASS} rows per pass, "
        f"{torch.get_num_threads()} threads, {platform.machine()}"
    )
    print(
        f"{'method':<22} {'deepinside img/s':>16} {'captum img/s':>13} {'speedup':>8} "
        f"{'peak MB ours':>13} {'peak MB captum':>15} {'map corr':>9}"
    )
    for r in rows:
        print(
            f"{r['method']:<22} {r['deepinside_images_per_s']:>16.2f} {r['captum_images_per_s']:>13.2f} "
            f"{r['speedup']:>7.2f}x {r['deepinside_peak_rss_mb']:>13.0f} {r['captum_peak_rss_mb']:>15.0f} "
            f"{r['map_correlation']:>9.5f}"
        )
    write_results(args.json, "attribution_throughput", {"rows": rows})


if __name__ == "__main__":
    main()
