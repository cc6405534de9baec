"""Top-1/top-5 accuracy of a built-in model on the dev photos, which checks its
preprocessing (expected 70-85% top-1 on these photos for EfficientNet-Lite0).

    python benchmarks/model_accuracy.py [--data ../shared/data/imagenet-val-loc-dev] [--model NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
from _results import write_results

import deepinside
from deepinside.io import load_photo


def accuracy(
    model: deepinside.Classifier, entries: list[dict], root: Path, batch: int = 25
) -> tuple[float, float]:
    top1 = top5 = 0
    for i in range(0, len(entries), batch):
        chunk = entries[i : i + batch]
        x, _ = model.prepare([load_photo(root / e["image"]) for e in chunk])
        with torch.no_grad():
            best = model(x).topk(5, dim=1).indices.tolist()
        for e, b in zip(chunk, best):
            top1 += b[0] == e["class_index"]
            top5 += e["class_index"] in b
    return top1 / len(entries), top5 / len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/model_accuracy.json"))
    args = parser.parse_args()
    entries = json.loads((args.data / "annotations.json").read_text())
    model = deepinside.load_model(args.model)
    rows = []
    for resize, crop in [("stretch", 1.0), ("center-crop", 0.875)]:
        model.preprocessing = dataclasses.replace(model.preprocessing, resize=resize, crop_fraction=crop)
        start = time.perf_counter()
        top1, top5 = accuracy(model, entries, args.data)
        rows.append(
            {
                "model": args.model,
                "resize": resize,
                "crop_fraction": crop,
                "images": len(entries),
                "top1": top1,
                "top5": top5,
                "seconds": time.perf_counter() - start,
            }
        )
    print(f"{'model':<20} {'resize':<22} {'images':>6} {'top-1':>7} {'top-5':>7}")
    for r in rows:
        label = r["resize"] + (f" ({r['crop_fraction']:.3f})" if r["resize"] == "center-crop" else "")
        print(f"{r['model']:<20} {label:<22} {r['images']:>6} {r['top1']:>7.1%} {r['top5']:>7.1%}")
    write_results(args.json, "model_accuracy", {"rows": rows})


if __name__ == "__main__":
    main()
