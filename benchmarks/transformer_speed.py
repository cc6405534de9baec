"""The transformer methods' cost against one forward and backward pass.

A ViT-S-sized Hugging Face ViT (12 blocks, width 384, 6 heads, patch 16,
224 px; random weights: none ship offline), loaded as users load it (SDPA
attention). The floor is one forward pass and one ``torch.autograd.grad``
of a class score to the input on the model as given; each method is timed
on one image, alternately with the floor. Target: each attention method
within 1.5x the floor. Prints a table and writes JSON:

    python benchmarks/transformer_speed.py [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import transformers
from _results import RESULTS, write_results
from _timing import median_seconds

import deepinside

METHODS = ["attention-rollout", "attention-relevance", "grad-cam", "gradient"]


def vit_small() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, num_labels=1000
    )
    return transformers.ViTForImageClassification(config).eval()


def floor(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).logits[:, 1].sum(), x)
    return g


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, default=RESULTS / "transformer_speed.json")
    args = parser.parse_args()
    model = vit_small()
    x = torch.randn(1, 3, 224, 224)
    rows = []
    for method in METHODS:
        # In turns, so that the machine's noise falls on both alike.
        base, ours = [], []
        for _ in range(3):
            base.append(median_seconds(lambda: floor(model, x), args.repeats))
            ours.append(median_seconds(lambda: deepinside.attribute(model, x, 1, method), args.repeats))
        b, o = sorted(base)[1], sorted(ours)[1]
        rows.append({"method": method, "seconds": o, "floor_seconds": b, "ratio_to_floor": o / b})
        print(f"{method:22s} {o * 1000:7.1f} ms   floor {b * 1000:7.1f} ms   {o / b:5.2f}x")
    write_results(
        args.json, "transformer_speed", {"model": "ViT-S/16 (HF, random weights, SDPA)", "rows": rows}
    )


if __name__ == "__main__":
    main()
