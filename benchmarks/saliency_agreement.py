"""How closely float32 saliency maps agree with a float64 reference, for
deepinside and for Captum, on the dev photos: the noise floor of any
float32 gradient through ~50 ReLU6 layers.

    python benchmarks/saliency_agreement.py [--data ../shared/data/imagenet-val-loc-dev] [--images 100]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from _results import write_results
from captum.attr import Saliency

import deepinside
from deepinside.io import load_photo


def reference_maps(model64: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    x = x.double().requires_grad_(True)
    (g,) = torch.autograd.grad(model64(x).gather(1, t[:, None]).sum(), x)
    return g.abs().amax(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/saliency_agreement.json"))
    args = parser.parse_args()
    entries = json.loads((args.data / "annotations.json").read_text())[: args.images]
    model = deepinside.load_model()
    model64 = copy.deepcopy(model).double()
    captum = Saliency(model)
    stats: dict[str, list[tuple[float, float, float]]] = {"deepinside": [], "captum": []}
    for i in range(0, len(entries), 10):
        x, _ = model.prepare([load_photo(args.data / e["image"]) for e in entries[i : i + 10]])
        with torch.no_grad():
            t = model(x).argmax(1)
        ref = reference_maps(model64, x, t)
        maps = {
            "deepinside": deepinside.saliency(model, x, t),
            "captum": captum.attribute(x, target=t, abs=True).amax(1),
        }
        for name, m in maps.items():
            for a, b in zip(m.double(), ref):
                rel = (a - b).abs() / b.max()
                corr = float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
                stats[name].append((float(rel.max()), float((rel <= 0.01).double().mean()), corr))
    rows = []
    for name, values in stats.items():
        worst = sorted(v[0] for v in values)
        rows.append(
            {
                "method": name,
                "images": len(values),
                "median_max_diff": worst[len(worst) // 2],
                "images_all_pixels_within_1pct": sum(v <= 0.01 for v in worst) / len(values),
                "worst_pixels_within_1pct": min(v[1] for v in values),
                "worst_correlation": min(v[2] for v in values),
            }
        )
    print(f"float32 maps vs a float64 reference, EfficientNet-Lite0, {len(entries)} dev photos")
    print(
        f"{'':<11} {'median max diff':>16} {'images all within 1%':>21} "
        f"{'worst pixels within 1%':>23} {'worst corr':>11}"
    )
    for r in rows:
        print(
            f"{r['method']:<11} {r['median_max_diff']:>16.3%} {r['images_all_pixels_within_1pct']:>21.0%} "
            f"{r['worst_pixels_within_1pct']:>23.2%} {r['worst_correlation']:>11.6f}"
        )
    write_results(args.json, "saliency_agreement", {"rows": rows})


if __name__ == "__main__":
    main()
