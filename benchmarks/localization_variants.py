"""Localisation variants on the dev photos: compute once, score many.

    python benchmarks/localization_variants.py cache --cache /tmp/locvar --lo 0 --hi 100
    python benchmarks/localization_variants.py score --cache /tmp/locvar [--limit N]

``cache`` runs the built-in model over the photos ``lo:hi`` once per view
(input scale x mirrored or not) and stores per photo (npz) what the variants
need, for the photo's true class: the Grad-CAM map of the feature layer (the
map the library's ``grad-cam`` computes, checked against it on the first
photos), Layer-CAM and Grad-CAM maps of earlier blocks, the first principal
components of the last features, and whether the true class is in the top 5.
Pieces are resumable: a photo already cached is skipped.

``score`` turns the cached maps into each variant's map on the model input,
then scores it with the library's own box code (``boxes_for``) and the
benchmark's MaxBoxAccV2 protocol (``evaluation/maxboxacc.py``), and writes
benchmarks/results/localization_variants.json. Metrics are over the true
class only, as ``deepinside evaluate localization`` computes them: GT-known,
top-1 localisation, top-5 localisation error, MaxBoxAcc .3/.5/.7 and V2.
With ``LOCVAR_SKIP_MAXBOX=1`` the box-rule variants (``boxer``) skip the
MaxBoxAccV2 sweep, which dominates the time and cannot change with the box rule.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _results import RESULTS, write_results

import deepinside
from deepinside.evaluation.annotations import load_annotations
from deepinside.evaluation.maxboxacc import MaxBoxAccV2
from deepinside.evaluation.run import samples_from
from deepinside.io.photos import load_photo
from deepinside.localization import LocalizationConfig, boxes_for, localization_maps, working_size
from deepinside.localization.boxes import best_iou
from deepinside.localization.segment import otsu_level
from deepinside.models.preprocessing import Placement

SCALES = (1.0, 1.5, 2.0, 2.5)
FLIPS = (False, True)
# Earlier layers for multi-layer CAMs: the outputs of these blocks (strides 32, 16, 8).
BLOCKS = {"b15": 15, "b10": 10, "b4": 4}


def samples(data: Path):  # type: ignore[no-untyped-def]
    entries = load_annotations(data / "annotations.json")
    return samples_from([e.image for e in entries], load_photo, entries)


def first_components(features: torch.Tensor, n: int = 2) -> torch.Tensor:
    """The photo's descriptors ``(C, h, w)`` projected on their first ``n``
    principal components (centred over the photo's positions): ``(n, h, w)``."""
    c, h, w = features.shape
    x = features.reshape(c, h * w).T.double()
    x = x - x.mean(0, keepdim=True)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    return (x @ vt[:n].T).T.reshape(n, h, w).float()


def layer_cams(model, x: torch.Tensor, targets: torch.Tensor, blocks: dict[str, int]):  # type: ignore[no-untyped-def]
    """Grad-CAM (``gc_NAME``) and Layer-CAM (``lc_NAME``) maps ``(B, h, w)`` of the
    feature layer (``last``) and of ``blocks`` for the inputs ``x``, the scores,
    and the layers' outputs."""
    net = model.net
    outs: dict[str, torch.Tensor] = {}
    hooks = [net.features.register_forward_hook(lambda m, i, o: outs.__setitem__("last", o))]
    for name, idx in blocks.items():
        hooks.append(
            net.body._blocks[idx].register_forward_hook(lambda m, i, o, name=name: outs.__setitem__(name, o))
        )
    try:
        with torch.enable_grad():
            scores = net(x.requires_grad_(True))
            names = ["last", *blocks]
            grads = torch.autograd.grad(scores.gather(1, targets[:, None]).sum(), [outs[n] for n in names])
    finally:
        for h in hooks:
            h.remove()
    result: dict[str, np.ndarray] = {}
    for name, g in zip(names, grads):
        a = outs[name].detach()
        result[f"gc_{name}"] = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1)).numpy()
        result[f"lc_{name}"] = F.relu((F.relu(g) * a).sum(1)).numpy()
    return result, scores.detach(), outs


def view_maps(model, inputs: torch.Tensor, targets: torch.Tensor, scale: float, flip: bool) -> dict:  # type: ignore[no-untyped-def]
    """Every cached map of one view, per photo of the batch."""
    x = inputs.flip(-1) if flip else inputs
    if scale != 1.0:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    result, scores, outs = layer_cams(model, x, targets, BLOCKS)
    last = outs["last"].detach()
    result["pca_last"] = torch.stack([first_components(f) for f in last]).numpy()
    result["pca_b15"] = torch.stack([first_components(f) for f in outs["b15"].detach()]).numpy()
    result["mean_last"] = last.mean(1).numpy()
    if scale == 1.0 and not flip:
        result["features_last"] = last.half().numpy()
        result["top5"] = scores.topk(5, dim=1).indices.numpy()
    return result


def fill_cache(
    args: argparse.Namespace,
    folder: Path,
    records_of: Callable[..., list[dict]],
    compress: bool = True,
) -> None:
    """Cache the photos ``args.lo:args.hi`` not yet in ``folder``, a batch at a
    time: ``records_of(model, chunk, inputs, targets)`` gives each photo's
    arrays, written to ``folder/<index>.npz`` whole or not at all, so an
    interrupted run goes on where it stopped."""
    torch.set_num_threads(args.threads)
    model = deepinside.load_model()
    everything = samples(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(args.lo, min(args.hi, len(everything))) if not (folder / f"{i}.npz").exists()]
    save = np.savez_compressed if compress else np.savez
    start = time.perf_counter()
    for lo in range(0, len(todo), args.batch):
        rows = todo[lo : lo + args.batch]
        chunk = [everything[i] for i in rows]
        inputs, _ = model.prepare([s.photo for s in chunk])
        targets = torch.tensor([s.class_index for s in chunk])
        for i, record in zip(rows, records_of(model, chunk, inputs, targets)):
            tmp = folder / f"{i}.tmp.npz"
            save(tmp, **record)
            tmp.rename(folder / f"{i}.npz")
        done = lo + len(rows)
        print(f"{done}/{len(todo)} photos, {(time.perf_counter() - start) / done:.2f} s/photo", flush=True)


def view_records(model, chunk, inputs: torch.Tensor, targets: torch.Tensor) -> list[dict]:  # type: ignore[no-untyped-def]
    per_view = {(s, f): view_maps(model, inputs, targets, s, f) for s in SCALES for f in FLIPS}
    return [
        {
            f"{key}@{s}{'f' if f else ''}": value[j]
            for (s, f), maps in per_view.items()
            for key, value in maps.items()
        }
        for j in range(len(chunk))
    ]


def cache(args: argparse.Namespace) -> None:
    fill_cache(args, args.cache, view_records)


def check(args: argparse.Namespace) -> None:
    """The cached Grad-CAM, brought onto the input as the library does, against the library's map."""
    torch.set_num_threads(args.threads)
    model = deepinside.load_model()
    everything = samples(args.data)
    for i in range(3):
        s = everything[i]
        inputs, _ = model.prepare([s.photo])
        config = LocalizationConfig("c", method="grad-cam", scales=(1.0, 1.5, 2.0), segmentation="threshold")
        lib = localization_maps(model, inputs, torch.tensor([[s.class_index]]), config)[0, 0]
        rec = np.load(args.cache / f"{i}.npz")
        ours = class_cam(rec, "gc_last", S3, False)
        print(i, "Grad-CAM", float((lib - ours).abs().max() / lib.abs().max()))
        config = LocalizationConfig(
            "c", method="grad-cam", scales=S3, segmentation="threshold", objectness=0.5
        )
        lib = localization_maps(model, inputs, torch.tensor([[s.class_index]]), config)[0, 0]
        ours = mean_of(
            lambda r: class_cam(r, "gc_last", S3, False), lambda r: pca_map(r, "pca_last", S3, False, ours)
        )(rec)
        print(i, "Grad-CAM + objectness", float((lib - ours).abs().max() / lib.abs().max()))


# ---------------------------------------------------------------- scoring

SIDE = 224


def on_input(low: np.ndarray, scale: float, flip: bool) -> torch.Tensor:
    """A view's low-resolution map brought onto the 224 x 224 input the way
    the library does: upsampled to the view's input, mirrored back, resized."""
    t = torch.from_numpy(np.asarray(low, np.float32))[None, None]
    size = round(SIDE * scale)
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    if flip:
        t = t.flip(-1)
    if scale != 1.0:
        t = F.interpolate(t, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return t[0, 0]


def peak_normalised(m: torch.Tensor) -> torch.Tensor:
    return m / m.max().clamp_min(1e-12)


def class_cam(rec, key: str, scales, flip: bool) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The library's multi-view average: each view's map over its peak, averaged."""
    views = [(s, f) for s in scales for f in ((False, True) if flip else (False,))]
    maps = [on_input(rec[f"{key}@{s}{'f' if f else ''}"], s, f) for s, f in views]
    if len(maps) == 1:
        return maps[0]
    return sum(peak_normalised(m) for m in maps) / len(maps)


def pca_map(rec, key: str, scales, flip: bool, cam: torch.Tensor, component: int = 0) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The first principal component's map, its sign chosen to agree with the CAM
    (positive correlation), clipped at 0 and averaged over the views like the CAM."""
    views = [(s, f) for s in scales for f in ((False, True) if flip else (False,))]
    out = []
    for s, f in views:
        m = on_input(rec[f"{key}@{s}{'f' if f else ''}"][component], s, f)
        c = cam - cam.mean()
        sign = 1.0 if float(((m - m.mean()) * c).sum()) >= 0 else -1.0
        out.append(peak_normalised(F.relu(sign * m)))
    return sum(out) / len(out)


def minmax(m: torch.Tensor) -> torch.Tensor:
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo).clamp_min(1e-12)


@dataclass
class PlacedMap:
    """A map on a crop of the photo rather than on the model input: ``placement``
    lays it over the whole photo, ``crop`` ``(x0, y0, x1, y1)`` (whole pixels)
    is the part whose box is cut (the crop is the photo the box rule sees)."""

    map: torch.Tensor
    placement: Placement
    crop: tuple[int, int, int, int]


class Scorer:
    def __init__(self, data: Path, cache_dir: Path, limit: int, more: tuple[Path, ...] = ()) -> None:
        """Records from ``cache_dir``, merged with those of the same photo in ``more``."""
        self.model = deepinside.load_model()
        everything = samples(data)
        n = min(limit, len(everything))
        dirs = (cache_dir, *more)
        # The dev photos' indices (their cache files' names), for scripts that cache more per photo.
        self.indices = [i for i in range(n) if all((d / f"{i}.npz").exists() for d in dirs)]
        self.samples = [everything[i] for i in self.indices]
        self.records = [
            {k: v for d in dirs for k, v in np.load(d / f"{i}.npz").items()} for i in self.indices
        ]
        self.placements = [self.model.prepare([s.photo])[1][0] for s in self.samples]
        self.top1 = [int(r["top5@1.0"][0]) == s.class_index for r, s in zip(self.records, self.samples)]
        self.top5 = [s.class_index in r["top5@1.0"].tolist() for r, s in zip(self.records, self.samples)]
        self.hits: dict[str, list[bool]] = {}

    def score(
        self,
        name: str,
        make_map: Callable[[dict], torch.Tensor],
        config: LocalizationConfig,
        rule: Callable[[np.ndarray], float] | None = None,
        boxer: Callable[[np.ndarray], tuple[float, float, float, float]] | None = None,
        skip_maxbox: bool = False,
    ) -> dict[str, object]:
        """``make_map(record)`` gives the map on the input; ``config`` its box rule;
        ``rule(map on the photo)``, if given, the photo's own threshold fraction;
        ``skip_maxbox``: GT-known and the top-5 error only (a quick look)."""
        known, maxbox = [], MaxBoxAccV2()
        # A box rule on a map already scored leaves MaxBoxAccV2 as it was: skip the costly sweep.
        skip_maxbox = skip_maxbox or (boxer is not None and os.environ.get("LOCVAR_SKIP_MAXBOX") == "1")
        for s, placement, rec in zip(self.samples, self.placements, self.records):
            m = make_map(rec)
            if isinstance(m, PlacedMap):
                known.append(best_iou(placed_box(s.photo, m, config), s.boxes) >= 0.5)
                if not skip_maxbox:
                    w, h = working_size(s.photo.width, s.photo.height, config.work_side)
                    on_photo = m.placement.to_photo(m.map, size=(w, h)).numpy()
                    maxbox.add_map(on_photo, s.boxes, s.photo.width, s.photo.height)
                continue
            photo_config = config
            if rule is not None:
                w, h = working_size(s.photo.width, s.photo.height, config.work_side)
                on_photo = minmax(placement.to_photo(m, size=(w, h))).numpy()
                photo_config = LocalizationConfig(**{**config.__dict__, "threshold": rule(on_photo)})
            if boxer is None:
                (found,) = boxes_for(s.photo, placement, m[None], [None], photo_config)  # type: ignore[list-item]
                box = found.box
            else:
                w, h = working_size(s.photo.width, s.photo.height, config.work_side)
                on_photo = minmax(placement.to_photo(m, size=(w, h))).numpy()
                if getattr(boxer, "wants_views", False):
                    # Rules that read a second map (one view) for the split, the averaged one for extent.
                    def view_on_photo(make, rec=rec, placement=placement, w=w, h=h):  # type: ignore[no-untyped-def]
                        return minmax(placement.to_photo(make(rec), size=(w, h))).numpy()

                    x0, y0, x1, y1 = boxer(on_photo, view_on_photo)
                else:
                    x0, y0, x1, y1 = boxer(on_photo)
                sx, sy = s.photo.width / w, s.photo.height / h
                box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
            known.append(best_iou(box, s.boxes) >= 0.5)
            if skip_maxbox:
                continue
            w, h = working_size(s.photo.width, s.photo.height, config.work_side)
            maxbox.add_map(placement.to_photo(m, size=(w, h)).numpy(), s.boxes, s.photo.width, s.photo.height)
        self.hits[name] = known  # per photo, for paired comparisons between variants
        k, t1, t5 = np.array(known), np.array(self.top1), np.array(self.top5)
        row = {
            "variant": name,
            "images": len(k),
            "gt_known_loc": float(k.mean()),
            "top1_loc": float((k & t1).mean()),
            "top5_loc_error": float(1 - (k & t5).mean()),
            **({} if skip_maxbox else maxbox.result()),
        }
        print(
            f"{name:60s} GT-known {100 * row['gt_known_loc']:5.1f}  "
            f"top-5 err {100 * row['top5_loc_error']:5.1f}  "
            + (
                ""
                if skip_maxbox
                else f"MaxBoxAcc {100 * row['maxboxacc_0.3']:.1f}/{100 * row['maxboxacc_0.5']:.1f}/"
                f"{100 * row['maxboxacc_0.7']:.1f} V2 {100 * row['maxboxacc_v2']:.1f}"
            ),
            flush=True,
        )
        return row


def placed_box(photo, placed: PlacedMap, config: LocalizationConfig):  # type: ignore[no-untyped-def]
    """The library's box of a map on a crop, cut within the crop, in photo pixels."""
    x0, y0, x1, y1 = placed.crop
    crop = photo.crop(placed.crop)
    inside = Placement(crop.size, tuple(float(v) - o for v, o in zip(placed.placement.box, (x0, y0, x0, y0))))
    (found,) = boxes_for(crop, inside, placed.map[None], [None], config)  # type: ignore[list-item]
    bx0, by0, bx1, by1 = found.box
    return (bx0 + x0, by0 + y0, bx1 + x0, by1 + y0)


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    scorer = Scorer(args.data, args.cache, args.limit)
    rows = []
    for name, make_map, config, rule, boxer in variants(args.only):
        rows.append(scorer.score(name, make_map, config, rule, boxer))
    if args.write:
        write_rows("localization_variants", rows, len(scorer.samples), partial=bool(args.only))


def write_rows(benchmark: str, rows: list[dict], images: int, partial: bool) -> None:
    """Write ``benchmarks/results/<benchmark>.json``; a ``partial`` run (some
    variants only) updates its rows there and keeps the others."""
    path = RESULTS / f"{benchmark}.json"
    if partial and path.exists():
        fresh = {r["variant"] for r in rows}
        rows = [
            r for r in json.loads(path.read_text())["results"]["rows"] if r["variant"] not in fresh
        ] + rows
    write_results(path, benchmark, {"images": images, "rows": rows})


def threshold_config(t: float = 0.2, box: str = "largest", frac: float = 0.0) -> LocalizationConfig:
    return LocalizationConfig(
        "v",
        segmentation="threshold",
        threshold=t,
        box=box,
        union_min_fraction=frac,  # type: ignore[arg-type]
    )


S3 = (1.0, 1.5, 2.0)


def norm(m: torch.Tensor) -> torch.Tensor:
    return peak_normalised(F.relu(m))


def mean_of(*makers):  # type: ignore[no-untyped-def]
    return lambda r: sum(norm(m(r)) for m in makers) / len(makers)


def variants(only: str | None):  # type: ignore[no-untyped-def]
    found = []

    def add(name, make_map, config=None, rule=None, boxer=None):  # type: ignore[no-untyped-def]
        if only is None or any(o in name for o in only.split("|")):
            found.append((name, make_map, config or threshold_config(), rule, boxer))

    def cam(key="gc_last", scales=S3, flip=False):  # type: ignore[no-untyped-def]
        return lambda r: class_cam(r, key, scales, flip)

    def pca(key="pca_last", scales=S3, flip=False, component=0):  # type: ignore[no-untyped-def]
        return lambda r: pca_map(r, key, scales, flip, class_cam(r, "gc_last", scales, flip), component)

    def geo(a, b):  # type: ignore[no-untyped-def]
        return lambda r: torch.sqrt(norm(a(r)) * norm(b(r)))

    def gated(coarse, fine, level=0.2):  # type: ignore[no-untyped-def]
        # The fine map where the coarse class map holds some evidence.
        return lambda r: norm(fine(r)) * (minmax(coarse(r)) >= level)

    # Grad-CAM: thresholds, scales, flips.
    add("default: Grad-CAM 1/1.5/2x, t=0.2", cam())
    for t in (0.1, 0.15, 0.25, 0.3):
        add(f"Grad-CAM 1/1.5/2x, t={t}", cam(), threshold_config(t))
    add("Grad-CAM 1x, t=0.2", cam(scales=(1.0,)))
    add("Grad-CAM 1/1.5/2/2.5x, t=0.2", cam(scales=SCALES))
    add("Grad-CAM 1.5/2/2.5x, t=0.2", cam(scales=(1.5, 2.0, 2.5)))
    add("Grad-CAM 1/1.5/2x + flip, t=0.2", cam(flip=True))
    add("Grad-CAM 1/1.5/2/2.5x + flip, t=0.2", cam(scales=SCALES, flip=True))
    add(
        "Grad-CAM 1/1.5/2x, union of components >= 0.5 of largest", cam(), threshold_config(0.2, "union", 0.5)
    )
    add("Grad-CAM 1/1.5/2x, union of all components", cam(), threshold_config(0.2, "union", 0.0))
    # Multi-layer CAMs.
    add("Layer-CAM last layer 1/1.5/2x, t=0.2", cam("lc_last"))
    for key in ("b15", "b10", "b4"):
        add(f"Layer-CAM {key} 1/1.5/2x, t=0.2", cam(f"lc_{key}"))
        add(f"Grad-CAM {key} 1/1.5/2x, t=0.2", cam(f"gc_{key}"))
        add(f"mean(Grad-CAM last, Layer-CAM {key}), t=0.2", mean_of(cam(), cam(f"lc_{key}")))
        add(f"sqrt(Grad-CAM last x Layer-CAM {key}), t=0.2", geo(cam(), cam(f"lc_{key}")))
        add(f"Layer-CAM {key} gated by Grad-CAM >= 0.2, t=0.2", gated(cam(), cam(f"lc_{key}")))
    add("Layer-CAM fusion last+b15+b10, t=0.2", mean_of(cam("lc_last"), cam("lc_b15"), cam("lc_b10")))
    # Class-agnostic objectness: the first principal component of the features.
    for key in ("pca_last", "pca_b15"):
        add(f"PCA {key} (sign by CAM), t=0.2", pca(key))
        add(f"PCA {key} > 0 (DDT rule)", pca(key), threshold_config(1e-6))
        add(f"mean(Grad-CAM, PCA {key}), t=0.2", mean_of(cam(), pca(key)))
        add(f"sqrt(Grad-CAM x PCA {key}), t=0.2", geo(cam(), pca(key)))
        add(f"PCA {key} gated by Grad-CAM >= 0.2, t=0.2", gated(cam(), pca(key)))
    add("mean activation of the last features, t=0.2", cam("mean_last"))
    for t in (0.1, 0.15, 0.25, 0.3):
        add(f"mean(Grad-CAM, PCA pca_last), t={t}", mean_of(cam(), pca("pca_last")), threshold_config(t))
        add(f"sqrt(Grad-CAM x PCA pca_last), t={t}", geo(cam(), pca("pca_last")), threshold_config(t))
    add("mean(Grad-CAM, PCA pca_last) + flip, t=0.2", mean_of(cam(flip=True), pca(flip=True)))
    add("mean(Grad-CAM, PCA pca_last) 1/1.5/2/2.5x, t=0.2", mean_of(cam(scales=SCALES), pca(scales=SCALES)))
    add("mean(Grad-CAM, PCA, Layer-CAM b10), t=0.2", mean_of(cam(), pca(), cam("lc_b10")))
    # The paper's graph cut seeded from a better map.
    graph = LocalizationConfig("g", segmentation="graphcut")
    graph_wide = LocalizationConfig("g", segmentation="graphcut", fg_quantile=0.8, bg_quantile=0.3)
    add("graph cut on Grad-CAM (seeds 95%/30%)", cam(), graph)
    add("graph cut on Grad-CAM (seeds 80%/30%)", cam(), graph_wide)
    add("graph cut on mean(Grad-CAM, PCA) (seeds 95%/30%)", mean_of(cam(), pca()), graph)
    add("graph cut on mean(Grad-CAM, PCA) (seeds 80%/30%)", mean_of(cam(), pca()), graph_wide)
    # Per-photo thresholds from the map's own statistics.
    add("Grad-CAM, Otsu threshold", cam(), rule=otsu_level)
    add("Grad-CAM, threshold = mean of the map", cam(), rule=lambda m: float(m.mean()))
    add("Grad-CAM, threshold = 1.5 x mean of the map", cam(), rule=lambda m: 1.5 * float(m.mean()))
    add("mean(Grad-CAM, PCA), Otsu threshold", mean_of(cam(), pca()), rule=otsu_level)
    add(
        "mean(Grad-CAM, PCA), threshold = mean of the map",
        mean_of(cam(), pca()),
        rule=lambda m: float(m.mean()),
    )
    add(
        "Grad-CAM, threshold = mean of the map, union >= 0.5",
        cam(),
        threshold_config(0.2, "union", 0.5),
        rule=lambda m: float(m.mean()),
    )
    add(
        "Grad-CAM 1/1.5/2x + flip, threshold = mean of the map",
        cam(flip=True),
        rule=lambda m: float(m.mean()),
    )
    add(
        "Grad-CAM 1/1.5/2/2.5x, threshold = mean of the map",
        cam(scales=SCALES),
        rule=lambda m: float(m.mean()),
    )
    # One instance's box where the map holds several (watershed from its peaks).
    for peak in (0.3, 0.5, 0.7):
        for distance in (10, 20):
            add(
                f"Grad-CAM, t=0.2, split at peaks >= {peak} {distance} px apart (watershed)",
                cam(),
                boxer=lambda m, p=peak, d=distance: instance_box(m, 0.2, p, d),
            )
    # Third round: instances apart on a smoothed map, every cut at a mean.
    for depth in (0.1, 0.2, 0.3, 0.4, 0.5):
        add(
            f"Grad-CAM, mean cut, split at humps of depth >= {depth} (h-maxima watershed)",
            cam(),
            boxer=lambda m, d=depth: hmax_box(m, d, "peak"),
        )
        add(
            f"Grad-CAM, mean cut, split at humps of depth >= {depth}, largest segment",
            cam(),
            boxer=lambda m, d=depth: hmax_box(m, d, "largest"),
        )
    add("Grad-CAM, mean cut, recut at the component's mean while it splits", cam(), boxer=recut_box)
    add(
        "Grad-CAM, mean cut, recut once at the component's mean if it splits",
        cam(),
        boxer=lambda m: recut_box(m, once=True),
    )
    add(
        "Grad-CAM, mean cut, recut while it splits, peak part",
        cam(),
        boxer=lambda m: recut_box(m, pick="peak"),
    )
    add(
        "Grad-CAM, mean cut, recut once at the component's mean if it splits into comparable parts",
        cam(),
        boxer=lambda m: recut_box(m, once=True, comparable=0.5),
    )
    for fine in (2.0, 2.5):
        for depth in (0.1, 0.2, 0.3):
            add(
                f"Grad-CAM, mean cut, split by {fine}x view's humps of depth >= {depth}",
                cam(),
                boxer=fine_split(cam(scales=(fine,)), depth),
            )
        add(
            f"Grad-CAM, mean cut, recut by {fine}x view at its mean while it splits",
            cam(),
            boxer=fine_recut(cam(scales=(fine,))),
        )
    return found


def mean_mask_components(m: np.ndarray, mask: np.ndarray):  # type: ignore[no-untyped-def]
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    return labels, n


def box_of(mask: np.ndarray):  # type: ignore[no-untyped-def]
    ys, xs = np.nonzero(mask)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def largest_label(labels: np.ndarray, n: int) -> int:
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    return int(np.argmax(areas))


def hmax_segments(m: np.ndarray, depth: float, mask: np.ndarray, sigma: float):  # type: ignore[no-untyped-def]
    """Watershed of the smoothed map from its h-maxima: humps at least ``depth``
    (of the map's range) above the saddle to any higher hump."""
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    smooth = ndimage.gaussian_filter(m, sigma) if sigma > 0 else m
    smooth = (smooth - smooth.min()) / max(float(np.ptp(smooth)), 1e-12)
    peaks = h_maxima(smooth, depth)
    markers, n = ndimage.label(peaks & mask)
    return smooth, markers, n, watershed(-smooth, markers, mask=mask)


def hmax_box(m: np.ndarray, depth: float, pick: str, sigma_frac: float = 0.02):  # type: ignore[no-untyped-def]
    mask = m >= m.mean()
    labels, n = mean_mask_components(m, mask)
    comp = labels == largest_label(labels, n)
    sigma = sigma_frac * max(m.shape)
    _, markers, k, basins = hmax_segments(m, depth, comp, sigma)
    if k <= 1:
        return box_of(comp)
    if pick == "peak":
        chosen = basins[np.unravel_index(np.argmax(np.where(comp, m, -1)), m.shape)]
    else:
        chosen = largest_label(basins, k)
    return box_of(basins == chosen)


def recut_box(  # type: ignore[no-untyped-def]
    m: np.ndarray, once: bool = False, pick: str = "largest", split_map=None, comparable: float = 0.0
):  # type: ignore[no-untyped-def]
    """Cut at the map's mean, keep the largest component; cut that component
    again at its own mean: if it falls into several parts, keep the chosen one
    and repeat; if it stays whole, its box is the answer."""
    from scipy import ndimage

    split = m if split_map is None else split_map
    mask = m >= m.mean()
    labels, n = ndimage.label(mask)
    comp = labels == largest_label(labels, n)
    while True:
        inner = comp & (split >= split[comp].mean())
        labels, n = ndimage.label(inner)
        areas = np.sort(np.bincount(labels.ravel())[1:])[::-1]
        if n <= 1 or areas[1] < comparable * areas[0]:
            return box_of(comp)
        if pick == "peak":
            chosen = labels[np.unravel_index(np.argmax(np.where(inner, split, -1)), m.shape)]
        else:
            chosen = largest_label(labels, n)
        # Grow the chosen part back within the component: the part's basin, not its core.
        from skimage.segmentation import watershed

        basins = watershed(-split, labels, mask=comp)
        comp = basins == chosen
        if once:
            return box_of(comp)


def fine_split(make_fine, depth: float):  # type: ignore[no-untyped-def]
    def boxer(m, view_on_photo):  # type: ignore[no-untyped-def]
        fine = view_on_photo(make_fine)
        mask = m >= m.mean()
        labels, n = mean_mask_components(m, mask)
        comp = labels == largest_label(labels, n)
        _, markers, k, basins = hmax_segments(fine, depth, comp, 0.0)
        if k <= 1:
            return box_of(comp)
        chosen = basins[np.unravel_index(np.argmax(np.where(comp, fine, -1)), m.shape)]
        return box_of(basins == chosen)

    boxer.wants_views = True  # type: ignore[attr-defined]
    return boxer


def fine_recut(make_fine):  # type: ignore[no-untyped-def]
    def boxer(m, view_on_photo):  # type: ignore[no-untyped-def]
        return recut_box(m, split_map=view_on_photo(make_fine))

    boxer.wants_views = True  # type: ignore[attr-defined]
    return boxer


def instance_box(m: np.ndarray, t: float, peak: float, distance: int):  # type: ignore[no-untyped-def]
    """The box of the strongest peak's watershed basin within the map above ``t``."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    from deepinside.localization.boxes import largest_component_box

    mask = m >= t
    peaks = (m == ndimage.maximum_filter(m, size=2 * distance + 1)) & (m >= peak)
    markers, n = ndimage.label(peaks)
    if n <= 1:
        return largest_component_box(mask)
    basins = watershed(-m, markers, mask=mask)
    strongest = markers[np.unravel_index(np.argmax(np.where(peaks, m, -1)), m.shape)]
    return largest_component_box(basins == strongest)


def add_run_args(parser: argparse.ArgumentParser, benchmark: str) -> None:
    """The options every localisation-variant script takes: the photos, the
    slice to cache, threads, which variants to score and whether to write."""
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/imagenet-val-loc-dev"))
    parser.add_argument("--lo", type=int, default=0)
    parser.add_argument("--hi", type=int, default=300)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="score only the variants whose name contains this")
    parser.add_argument("--write", action="store_true", help=f"write benchmarks/results/{benchmark}.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["cache", "score", "check"])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locvar"))
    add_run_args(parser, "localization_variants")
    args = parser.parse_args()
    {"cache": cache, "score": score, "check": check}[args.step](args)


if __name__ == "__main__":
    main()
