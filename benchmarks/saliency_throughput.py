"""Saliency throughput: deepinside vs Captum vs the naive floor, same run.

The floor is one forward and one ``torch.autograd.grad`` to the input on the
model as given. Prints a table and writes JSON (``--json``). Run:

    python benchmarks/saliency_throughput.py [--repeats 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from _results import write_results
from _timing import median_seconds
from captum.attr import Saliency
from PIL import Image
from skimage import data

import deepinside
from deepinside.attribution import saliency


def photos() -> list[Image.Image]:
    names = ["chelsea", "coffee", "astronaut", "rocket"]
    return [Image.fromarray(getattr(data, n)()) for n in names] * 2


def floor(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return g.abs().amax(1)


def agreement(ours: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """Worst per-image max |diff| / max, worst per-image fraction of pixels within
    1% of the max, and the worst per-image correlation."""
    rel = (ours - ref).abs().flatten(1) / ref.abs().flatten(1).amax(1, keepdim=True)
    corr = min(
        float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1]) for a, b in zip(ours, ref)
    )
    return float(rel.amax()), float((rel <= 0.01).float().mean(1).min()), corr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/saliency_throughput.json"))
    args = parser.parse_args()

    model = deepinside.load_model()
    batch8, _ = model.prepare(photos())
    with torch.no_grad():
        targets8 = model(batch8).argmax(1)
    captum = Saliency(model)
    rows = []
    for b in (1, 8):
        x, t = batch8[:b], targets8[:b]
        ours_map = saliency(model, x, t)
        captum_map = captum.attribute(x, target=t, abs=True).amax(1)
        rel, within, corr = agreement(ours_map, captum_map)
        secs = {
            "deepinside": median_seconds(lambda: saliency(model, x, t), args.repeats),
            "captum": median_seconds(lambda: captum.attribute(x, target=t, abs=True).amax(1), args.repeats),
            "floor": median_seconds(lambda: floor(model, x, t), args.repeats),
        }
        rows.append(
            {
                "batch": b,
                **{f"{k}_images_per_s": b / v for k, v in secs.items()},
                "speedup_vs_captum": secs["captum"] / secs["deepinside"],
                "speedup_vs_floor": secs["floor"] / secs["deepinside"],
                "max_diff_rel_to_max": rel,
                "pixels_within_1pct": within,
                "correlation": corr,
            }
        )
    header = (
        f"{'batch':>5} {'deepinside':>11} {'captum':>8} {'floor':>8} {'vs captum':>10} {'vs floor':>9} "
        f"{'max diff':>9} {'within 1%':>10} {'corr':>9}"
    )
    print(
        f"EfficientNet-Lite0 at 224 px, images/s, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['batch']:>5} {r['deepinside_images_per_s']:>11.1f} {r['captum_images_per_s']:>8.1f} "
            f"{r['floor_images_per_s']:>8.1f} {r['speedup_vs_captum']:>9.2f}x {r['speedup_vs_floor']:>8.2f}x "
            f"{r['max_diff_rel_to_max']:>8.2%} {r['pixels_within_1pct']:>9.3%} {r['correlation']:>9.6f}"
        )
    write_results(args.json, "saliency_throughput", {"rows": rows})


if __name__ == "__main__":
    main()
