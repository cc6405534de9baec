"""Fourth round of localisation variants: the class map refined with the
network's own features and the photo.

    python benchmarks/localization_affinity.py cache --lo 0 --hi 150   # pieces, resumable
    python benchmarks/localization_affinity.py score [--limit 100] [--only NAME] [--write]

``cache`` runs the built-in model forward (no gradients) over the dev photos
at the input scales 1x, 1.5x and 2x and stores, per photo, the mid-level
features the variants read: the outputs of block 4 (stride 8), block 10
(stride 16), block 15 and the feature layer (stride 32), as float16 in
``--features`` (default /tmp/locvarB). The class maps themselves come from
``localization_variants.py``'s cache (``--cache``, default /tmp/locvar), read
only.

``score`` builds each variant's map on the model input from both caches and
scores it with ``localization_variants.Scorer`` (the library's box code and
the MaxBoxAccV2 protocol), writing benchmarks/results/localization_affinity.json.
The variants (docs/localization.md, "Fourth round"):

- **affinity**: the class map carried a few random-walk steps over an
  affinity matrix of the features' cosine similarities, sharpened by a power
  and row-normalised (the propagation of PSA/AffinityNet, Ahn & Kwak 2018,
  with the frozen classifier's features in place of a trained affinity net);
- **guided**: the map upsampled by a guided filter (He et al. 2010) steered
  by the photo, so that it stops at the photo's edges;
- **seeded**: the cosine similarity of every position to the descriptor of
  the map's most confident region, gated by or mixed with the class map.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from localization_variants import (
    S3,
    SIDE,
    Scorer,
    add_run_args,
    class_cam,
    fill_cache,
    norm,
    threshold_config,
    write_rows,
)
from PIL import Image

from deepinside.io.photos import to_rgb
from deepinside.localization import LocalizationConfig
from deepinside.localization.segment import otsu_level

FEATURE_SCALES = (1.0, 1.5, 2.0)
# The mid-level layers read: block outputs at strides 8, 16 and 32, and the feature layer.
FEATURE_BLOCKS = {"b4": 4, "b10": 10, "b15": 15}


def view_features(model, inputs: torch.Tensor, scale: float) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    net = model.net
    x = inputs if scale == 1.0 else F.interpolate(inputs, scale_factor=scale, mode="bilinear")
    outs: dict[str, torch.Tensor] = {}
    hooks = [net.features.register_forward_hook(lambda m, i, o: outs.__setitem__("last", o))]
    for name, idx in FEATURE_BLOCKS.items():
        hooks.append(
            net.body._blocks[idx].register_forward_hook(lambda m, i, o, name=name: outs.__setitem__(name, o))
        )
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return {name: t.half().numpy() for name, t in outs.items()}


def feature_records(model, chunk, inputs: torch.Tensor, targets: torch.Tensor) -> list[dict]:  # type: ignore[no-untyped-def]
    per_view = {s: view_features(model, inputs, s) for s in FEATURE_SCALES}
    return [
        {f"f_{k}@{s}": v[j] for s, feats in per_view.items() for k, v in feats.items()}
        for j in range(len(chunk))
    ]


def cache(args: argparse.Namespace) -> None:
    fill_cache(args, args.features, feature_records, compress=False)


# ---------------------------------------------------------------- the maps

MEAN_CUT = LocalizationConfig("v", segmentation="mean")


def grid_of(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A map on the input ``(H, W)`` averaged down to a feature grid ``size``."""
    return F.adaptive_avg_pool2d(m[None, None], size)[0, 0]


def to_input(m: torch.Tensor) -> torch.Tensor:
    """A map on a feature grid brought onto the 224 x 224 input as the library does (bilinear)."""
    return F.interpolate(m[None, None], size=(SIDE, SIDE), mode="bilinear", align_corners=False)[0, 0]


def features_of(rec, layer: str, scale: float) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return torch.from_numpy(rec[f"f_{layer}@{scale}"].astype(np.float32))


def transition(features: torch.Tensor, power: float, radius: float | None) -> torch.Tensor:
    """The random walk's transition matrix ``(n, n)`` over the grid's positions:
    cosine similarity of their descriptors ``(C, h, w)``, cut at 0, raised to
    ``power``, within ``radius`` grid cells if given, each row summing to 1."""
    c, h, w = features.shape
    f = F.normalize(features.reshape(c, h * w).T, dim=1)
    a = F.relu(f @ f.T) ** power
    if radius is not None:
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()], 1).float()
        a = a * (torch.cdist(pos, pos) <= radius)
    return a / a.sum(1, keepdim=True).clamp_min(1e-12)


def propagated(
    cam: torch.Tensor, features: torch.Tensor, power: float, steps: int, radius: float | None = None
) -> torch.Tensor:
    """The class map on the input carried ``steps`` random-walk steps over the
    features' affinities (PSA's ``vec(M) <- T^t vec(M)``), back on the input."""
    h, w = features.shape[-2:]
    t = transition(features, power, radius)
    return walked(cam, t, (h, w), steps)


def walked(cam: torch.Tensor, t: torch.Tensor, size: tuple[int, int], steps: int) -> torch.Tensor:
    h, w = size
    v = grid_of(cam, (h, w)).flatten()
    for _ in range(steps):
        v = t @ v
    return to_input(v.reshape(h, w))


def box_sum(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of ``p`` ``(H, W)`` steered by the colour image
    ``guide`` ``(H, W, 3)`` in [0, 1]: locally an affine function of the guide's
    colours, so the output's edges are the photo's."""
    i = guide.astype(np.float64)
    p = p.astype(np.float64)
    mean_i = np.stack([box_sum(i[..., k], r) for k in range(3)], -1)
    mean_p = box_sum(p, r)
    cov_ip = np.stack([box_sum(i[..., k] * p, r) for k in range(3)], -1) - mean_i * mean_p[..., None]
    var = np.empty(i.shape[:2] + (3, 3))
    for a in range(3):
        for b in range(3):
            var[..., a, b] = box_sum(i[..., a] * i[..., b], r) - mean_i[..., a] * mean_i[..., b]
    var += eps * np.eye(3)
    coef = np.linalg.solve(var, cov_ip[..., None])[..., 0]  # (H, W, 3)
    offset = mean_p - (coef * mean_i).sum(-1)
    mean_coef = np.stack([box_sum(coef[..., k], r) for k in range(3)], -1)
    return (mean_coef * i).sum(-1) + box_sum(offset, r)


def seeded(cam: torch.Tensor, features: torch.Tensor, centred: bool) -> torch.Tensor:
    """Cosine similarity, cut at 0, of every position's descriptor to the mean
    descriptor of the map's confident region (the grid cells at or above the
    map's mean, weighted by the map); ``centred``: descriptors less the photo's
    mean descriptor first (similarity relative to the rest of the photo)."""
    c, h, w = features.shape
    f = features.reshape(c, h * w).T
    if centred:
        f = f - f.mean(0, keepdim=True)
    m = grid_of(cam, (h, w)).flatten()
    weight = torch.where(m >= m.mean(), m, torch.zeros_like(m))
    seed = (weight[:, None] * f).sum(0) / weight.sum().clamp_min(1e-12)
    sim = F.relu(F.normalize(f, dim=1) @ F.normalize(seed, dim=0))
    return to_input(sim.reshape(h, w))


# ---------------------------------------------------------------- the variants


def default_cam(rec) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The default's map: Grad-CAM at 1x, 1.5x, 2x, each over its peak, averaged."""
    if "_cam" not in rec:
        rec["_cam"] = class_cam(rec, "gc_last", S3, False)
    return rec["_cam"]


AFFINITY_LAYERS = (("last", 2.0), ("b15", 2.0), ("b10", 1.0), ("b10", 2.0), ("b4", 1.0))


def affinity_map(rec, key: tuple, steps: int) -> torch.Tensor:  # type: ignore[no-untyped-def, type-arg]
    """The default's map propagated over the affinities ``key`` (layer, scale,
    power, radius); the photo's last transition matrix is kept, as the
    variants that share it (the numbers of steps) run one after the other."""
    layers, power, radius = key[:-2], key[-2], key[-1]
    if isinstance(layers[0], str):
        layers = (layers,)
    if rec.get("_transition", (None,))[0] != key:
        t = None
        for layer, scale in layers:
            one = transition(features_of(rec, layer, scale), power, radius)
            t = one if t is None else t * one
        rec["_transition"] = (key, t / t.sum(1, keepdim=True))
    size = rec[f"f_{layers[0][0]}@{layers[0][1]}"].shape[-2:]
    return walked(default_cam(rec), rec["_transition"][1], size, steps)


def variants(only: str | None):  # type: ignore[no-untyped-def]
    found = []

    def add(name, make_map, config=MEAN_CUT, rule=None):  # type: ignore[no-untyped-def]
        if only is None or any(o in name for o in only.split("|")):
            found.append((name, make_map, config, rule))

    add("default: Grad-CAM 1/1.5/2x, mean cut", default_cam)
    for layer, scale in AFFINITY_LAYERS:
        for power in (1, 4, 8, 16) if layer == "last" else (1, 4, 8):
            for radius in (None, 5):
                for steps in (1, 4, 16, 64) if layer == "last" else (1, 4, 16):
                    where = "global" if radius is None else f"radius {radius}"
                    add(
                        f"affinity {layer}@{scale:g}x, power {power}, {steps} steps, {where}",
                        lambda r, key=(layer, scale, power, radius), st=steps: affinity_map(r, key, st),
                    )
    # Both the last features' likeness (what) and block 10's (where its edges
    # are), on the same 14 x 14 grid: their affinities multiplied.
    for power in (4, 8):
        for steps in (4, 16):
            add(
                f"affinity last@2x x b10@1x, power {power}, {steps} steps, global",
                lambda r, key=(("last", 2.0), ("b10", 1.0), power, None), st=steps: affinity_map(r, key, st),
            )
    # The cut of the propagated maps: the default's mean, Otsu's (the walk makes
    # the map nearly two-level, Otsu's assumption), and fixed fractions to see where the best lies.
    for key, steps in (
        (("last", 2.0, 8, None), 16),
        (("b10", 1.0, 4, None), 4),
        (("b10", 1.0, 4, 5), 16),
        ((("last", 2.0), ("b10", 1.0), 4, None), 16),
    ):
        label = f"{key[0]}@{key[1]:g}x" if isinstance(key[0], str) else "last@2x x b10@1x"
        name = (
            f"affinity {label}, power {key[2]}, {steps} steps, {'global' if key[3] is None else 'radius 5'}"
        )
        walk = lambda r, key=key, st=steps: affinity_map(r, key, st)  # noqa: E731
        add(f"{name}, Otsu cut", walk, threshold_config(), rule=otsu_level)
        for t in (0.2, 0.3, 0.4, 0.5):
            add(f"{name}, t={t}", walk, threshold_config(t))
    for radius in (8, 16, 32):
        for eps in (1e-3, 1e-2, 1e-1):
            add(
                f"guided filter by the photo, r={radius}, eps={eps:g}",
                lambda r, rd=radius, e=eps: torch.from_numpy(
                    guided_filter(r["_rgb"], default_cam(r).numpy(), rd, e).astype(np.float32)
                ),
            )
    for layer, scale in (("last", 1.0), ("last", 2.0), ("b15", 2.0), ("b10", 2.0), ("b4", 2.0)):
        for centred in (False, True):
            kind = "centred " if centred else ""
            sim = lambda r, ly=layer, sc=scale, c=centred: seeded(default_cam(r), features_of(r, ly, sc), c)  # noqa: E731
            add(f"seeded {kind}similarity {layer}@{scale:g}x", sim)
            add(
                f"seeded {kind}similarity {layer}@{scale:g}x x Grad-CAM",
                lambda r, s=sim: s(r) * default_cam(r),
            )
            add(
                f"mean(seeded {kind}similarity {layer}@{scale:g}x, Grad-CAM)",
                lambda r, s=sim: (norm(s(r)) + norm(default_cam(r))) / 2,
            )
    return found


def input_rgb(photo, placement) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The photo as the model's 224 x 224 input sees it, RGB in [0, 1] (the guide)."""
    x0, y0, x1, y1 = placement.box
    crop = to_rgb(photo).crop((round(x0), round(y0), round(x1), round(y1)))
    return np.asarray(crop.resize((SIDE, SIDE), Image.Resampling.BILINEAR), np.float64) / 255


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    scorer = Scorer(args.data, args.cache, args.limit)
    for i, rec, s, placement in zip(scorer.indices, scorer.records, scorer.samples, scorer.placements):
        rec.update(np.load(args.features / f"{i}.npz"))
        rec["_rgb"] = input_rgb(s.photo, placement)
    rows = []
    for name, make_map, config, rule in variants(args.only):
        start = time.perf_counter()
        row = scorer.score(name, make_map, config, rule, skip_maxbox=args.quick)
        row["seconds"] = time.perf_counter() - start
        print(f"  {row['seconds']:.0f} s", flush=True)
        rows.append(row)
    if args.write:
        write_rows("localization_affinity", rows, len(scorer.samples), partial=bool(args.only))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["cache", "score"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locvar"), help="the class maps (read only)")
    parser.add_argument("--features", type=Path, default=Path("/tmp/locvarB"))
    parser.add_argument("--quick", action="store_true", help="GT-known and top-5 error only")
    add_run_args(parser, "localization_affinity")
    args = parser.parse_args()
    {"cache": cache, "score": score}[args.step](args)


if __name__ == "__main__":
    main()
