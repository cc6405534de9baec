"""Where to cut a walked class map, and walks that chain the feature
layer's affinities with a finer layer's (docs/localization.md, "Sixth round").

    python benchmarks/localization_cut.py [--limit 100] [--only NAME] [--write]

Reads two per-photo caches of the dev photos, filled beforehand:
``--cache`` (default /tmp/locvar) by ``localization_variants.py cache``
(the class maps) and ``--features`` (default /tmp/locvarB) by
``localization_affinity.py cache`` (the mid-level features), and scores
each variant with ``localization_variants.Scorer``, writing
benchmarks/results/localization_cut.json. The cut rules read only the map
itself. Last, the split-half check: the best walk and cut chosen on a
random half of the photos, scored on the other half.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import numpy as np
import torch
from localization_affinity import MEAN_CUT, affinity_map, features_of, transition, walked
from localization_variants import Scorer, add_run_args, norm, threshold_config, write_rows

from deepinside.localization import iou, largest_component_box
from deepinside.localization.segment import otsu_level

# The walks measured in the fourth round: the default's (feature layer at 2x)
# and the best maps (block 10, stride 16, on the input at 1x).
WALK_LAST = (("last", 2.0, 8, None), 16)
WALK_B10 = (("b10", 1.0, 4, None), 4)


def walk(key_steps):  # type: ignore[no-untyped-def]
    key, steps = key_steps
    return lambda r: affinity_map(r, key, steps)


def chained(first, layer: str, scale: float, power: float, steps: int):  # type: ignore[no-untyped-def]
    """``first``'s map walked again over ``layer``'s affinities: the class
    evidence spread over the object by the coarse walk, its edge then settled
    by the finer layer's."""

    def make(r):  # type: ignore[no-untyped-def]
        features = features_of(r, layer, scale)
        key = ("_chain", layer, scale, power)
        if r.get("_chain_t", (None,))[0] != key:
            r["_chain_t"] = (key, transition(features, power, None))
        return walked(norm(first(r)), r["_chain_t"][1], features.shape[-2:], steps)

    return make


def level_gradients(m: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The mean gradient magnitude of ``m`` over the pixels in each band of values."""
    gy, gx = np.gradient(m)
    g = np.hypot(gx, gy)
    band = np.digitize(m, edges) - 1
    means = np.zeros(len(edges) - 1)
    for k in range(len(edges) - 1):
        inside = band == k
        if inside.sum() >= 16:
            means[k] = g[inside].mean()
    return means


def steepest_cut(m: np.ndarray) -> float:
    """The level where the map falls fastest: the mean gradient over each
    band of 0.05 of the range, the band with the largest taken (its centre)."""
    edges = np.linspace(0.05, 0.95, 19)
    means = level_gradients(m, edges)
    k = int(np.argmax(means))
    return float((edges[k] + edges[k + 1]) / 2)


def stable_cut(whole_image: float):  # type: ignore[no-untyped-def]
    """The level whose box moves least as the level moves (the IoU of the
    boxes a step below and above), among boxes under ``whole_image`` of the
    photo's area: the object's outline is where the map drops steeply, so
    the box stays put over a range of levels there."""

    def rule(m: np.ndarray) -> float:
        levels = np.arange(0.05, 0.951, 0.025)
        whole = (0.0, 0.0, float(m.shape[1]), float(m.shape[0]))
        boxes = [largest_component_box(m >= t) or whole for t in levels]
        area = m.shape[0] * m.shape[1]
        best, best_t = -1.0, float(levels[len(levels) // 2])
        for k in range(1, len(levels) - 1):
            b = boxes[k]
            if (b[2] - b[0]) * (b[3] - b[1]) > whole_image * area:
                continue
            s = min(iou(boxes[k - 1], b), iou(b, boxes[k + 1]))
            if s > best:
                best, best_t = s, float(levels[k])
        return best_t

    return rule


def separability(m: np.ndarray) -> float:
    """Otsu's measure of how two-level a map is: the between-class variance at
    Otsu's cut over the total variance (1 for a map of two values)."""
    v = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
    above = v >= otsu_level(v)
    if above.all() or not above.any() or v.var() == 0:
        return 0.0
    w = above.mean()
    return float(w * (1 - w) * (v[above].mean() - v[~above].mean()) ** 2 / v.var())


def most_two_level(layer: str, scale: float, powers, steps):  # type: ignore[no-untyped-def]
    """Per photo, the walk (a power and a number of steps) whose map is the
    most two-level (:func:`separability`): walk until the map has an object
    and a background, then cut between them."""

    def make(r):  # type: ignore[no-untyped-def]
        best, best_s = None, -1.0
        for power in powers:
            for n in steps:
                m = affinity_map(r, (layer, scale, power, None), n)
                s = separability(m.numpy())
                if s > best_s:
                    best, best_s = m, s
        return best

    return make


CUTS = {
    "mean cut": (MEAN_CUT, None),
    "Otsu cut": (threshold_config(), otsu_level),
    "steepest cut": (threshold_config(), steepest_cut),
    "stable cut": (threshold_config(), stable_cut(1.01)),
    "stable cut, boxes < 0.9": (threshold_config(), stable_cut(0.9)),
    "t=0.3": (threshold_config(0.3), None),
    "t=0.4": (threshold_config(0.4), None),
}


def variants(only: str | None):  # type: ignore[no-untyped-def]
    last, b10 = walk(WALK_LAST), walk(WALK_B10)
    maps = {
        "default walk (last@2x, power 8, 16 steps)": last,
        "b10@1x walk (power 4, 4 steps)": b10,
        "mean(default walk, b10@1x walk)": lambda r: (norm(last(r)) + norm(b10(r))) / 2,
        "default walk, then b10@1x power 4, 4 steps": chained(last, "b10", 1.0, 4, 4),
        "default walk, then b10@1x power 8, 4 steps": chained(last, "b10", 1.0, 8, 4),
        "default walk, then b10@1x power 4, 1 step": chained(last, "b10", 1.0, 4, 1),
    }
    for layer, scale in (("b10", 1.0), ("b10", 2.0), ("last", 2.0), ("b15", 2.0)):
        maps[f"most two-level walk over {layer}@{scale:g}x, power 4, 1-32 steps"] = most_two_level(
            layer, scale, (4,), (1, 2, 4, 8, 16, 32)
        )
        maps[f"most two-level walk over {layer}@{scale:g}x, power 1-16, 1-32 steps"] = most_two_level(
            layer, scale, (1, 2, 4, 8, 16), (1, 2, 4, 8, 16, 32)
        )
    found = []
    # Otsu's cut over every walk of the fourth round's grid (global reach):
    # does the cut hold across the walk's settings, or only at one?
    for layer, scale in (("last", 2.0), ("b15", 2.0), ("b10", 1.0), ("b10", 2.0), ("b4", 1.0)):
        for power in (1, 4, 8, 16):
            for steps in (1, 4, 16):
                name = f"sweep {layer}@{scale:g}x, power {power}, {steps} steps"
                make = walk(((layer, scale, power, None), steps))
                for cut_name in ("mean cut", "Otsu cut"):
                    if only is None or any(o in f"{name}, {cut_name}" for o in only.split("|")):
                        config, rule = CUTS[cut_name]
                        found.append((f"{name}, {cut_name}", make, config, rule, cut_name != "mean cut"))
    for map_name, make in maps.items():
        for i, (cut_name, (config, rule)) in enumerate(CUTS.items()):
            name = f"{map_name}, {cut_name}"
            if only is None or any(o in name for o in only.split("|")):
                # A map's MaxBoxAccV2 does not depend on its cut: swept once per map.
                found.append((name, make, config, rule, i > 0))
    return found


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    scorer = Scorer(args.data, args.cache, args.limit)
    for i, rec in zip(scorer.indices, scorer.records):
        rec.update(np.load(args.features / f"{i}.npz"))
    rows = []
    for name, make_map, config, rule, skip in variants(args.only):
        start = time.perf_counter()
        row = scorer.score(name, make_map, config, rule, skip_maxbox=skip or args.quick)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    for cuts in (("mean cut",), ("mean cut", "Otsu cut")):
        held_out = split_half_choice(scorer.hits, cuts, args.splits)
        if held_out is None:
            continue
        print(
            f"chosen among the sweep's {' and '.join(cuts)} rows on half the photos, GT-known on the "
            f"other half: {100 * held_out.mean():.1f} +- {100 * held_out.std():.1f} ({args.splits} splits)"
        )
        rows.append(
            {
                "variant": f"split-half choice among the sweep's {' and '.join(cuts)} rows",
                "held_out_gt_known_mean": float(held_out.mean()),
                "held_out_gt_known_sd": float(held_out.std()),
                "splits": args.splits,
            }
        )
    if args.write:
        write_rows("localization_cut", rows, len(scorer.samples), partial=bool(args.only))


def split_half_choice(hits: dict[str, list[bool]], cuts: tuple[str, ...], splits: int) -> np.ndarray | None:
    """How well choosing a walk and cut on dev photos carries to unseen ones:
    the sweep's best row (GT-known) on a random half of the photos, scored on
    the other half, over ``splits`` random halves."""
    names = [n for n in hits if n.startswith("sweep ") and n.rsplit(", ", 1)[1] in cuts]
    if not names:
        return None
    table = np.array([hits[n] for n in names], dtype=float)  # (rows, photos)
    rng = np.random.default_rng(0)
    out, chosen = [], collections.Counter()
    for _ in range(splits):
        pick = rng.permutation(table.shape[1]) < table.shape[1] // 2
        best = int(np.argmax(table[:, pick].mean(1)))
        out.append(table[best, ~pick].mean())
        chosen[names[best]] += 1
    print("  chosen most often:", "; ".join(f"{n} ({k})" for n, k in chosen.most_common(4)))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locvar"))
    parser.add_argument("--features", type=Path, default=Path("/tmp/locvarB"))
    parser.add_argument("--splits", type=int, default=200, help="random halves for the split-half choice")
    parser.add_argument("--quick", action="store_true", help="GT-known and the top-5 error only")
    add_run_args(parser, "localization_cut")
    args = parser.parse_args()
    score(args)


if __name__ == "__main__":
    main()
