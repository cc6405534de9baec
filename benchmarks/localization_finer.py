"""Finer localisation maps from more views: sub-stride shifts, zoom-in, larger scales.

    python benchmarks/localization_finer.py cache --views shifts --lo 0 --hi 100   (pieces)
    python benchmarks/localization_finer.py cache --views zoom --margin 0.25 --lo 0 --hi 100
    python benchmarks/localization_finer.py score [--limit N] [--only NAME] [--write]

The fourth round of docs/localization.md. It reuses localization_variants.py:
its cache (``--base``, read only: 1x-2.5x views, the true class's Grad-CAM and
top 5) and its ``Scorer`` (the library's box code and the MaxBoxAccV2
protocol); this script caches only the new views, for the true class, in
``--cache``/shifts and ``--cache``/zoomMARGIN:

- ``shifts``: the input at each scale, pasted into a canvas one stride (32 px
  of the view) larger at sub-stride offsets, so that the feature grid samples
  the photo at other phases: Grad-CAM ``gc@SCALE+DY,DX`` on the canvas.
- ``zoom``: a second pass on a square crop around the ``multiscale`` config's box for
  the true class (with a margin), resized to the model input: Grad-CAM
  ``zoomMARGIN@SCALE``, the crop (``zoomMARGIN_crop``, with ``photo_size``),
  the crop's probability of the class and whether it is in the crop's top 5.

``score`` brings each view's cells onto the input at their centres and scores
variants as ``localization_variants.py`` does (true class only: GT-known,
top-1 localisation, top-5 localisation error, MaxBoxAcc .3/.5/.7 and V2),
writing benchmarks/results/localization_finer.json. Two placements of the
cells are compared: where the library's bilinear upsampling puts them (cell j
of n on a side of S at (j + 0.5) S / n) and where the network's strided
convolutions centre them (traced from the model: 32 j + 31.5 for the built-in
EfficientNet, whose TensorFlow-style padding adds its pixel on the right).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from localization_variants import (
    PlacedMap,
    Scorer,
    add_run_args,
    fill_cache,
    layer_cams,
    peak_normalised,
    write_rows,
)
from PIL import Image

from deepinside.io.photos import to_rgb
from deepinside.localization import ABLATIONS, LocalizationConfig, boxes_for, localization_maps
from deepinside.models.preprocessing import Placement

STRIDE = 32  # the feature layer's stride in view pixels
SIDE = 224
# Sub-stride phases cached per scale (n per axis: offsets k * 32 / n view pixels).
PHASES = {1.0: 4, 1.5: 2, 2.0: 2, 2.5: 2, 3.0: 2}
ZOOM_MARGINS = (0.25, 0.0)
ZOOM_SCALES = (1.0, 1.5, 2.0)
MEAN_CUT = LocalizationConfig("v", segmentation="mean")


# ---------------------------------------------------------------- geometry


def strided_geometry(model, side: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """``(a, b)``: the feature layer's cell j is centred at ``a * j + b`` view pixels
    (continuous, pixel i spans [i, i + 1)) for a square input of ``side``, traced
    through the strided convolutions and the padding they apply."""
    found = []

    def hook(module, inputs, output):  # type: ignore[no-untyped-def]
        if module.stride[0] > 1:
            pad = getattr(module, "static_padding", None)
            left = pad.padding[0] if pad is not None and hasattr(pad, "padding") else module.padding[0]
            found.append((module.kernel_size[0], module.stride[0], left))

    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    hooks = [m.register_forward_hook(hook) for m in convs]
    try:
        with torch.no_grad():
            model.net(torch.zeros(1, 3, side, side))
    finally:
        for h in hooks:
            h.remove()
    a, b = 1.0, 0.5
    for k, s, left in found:
        b += a * (-left + (k - 1) / 2)
        a *= s
    return a, b


def cell_centres(n: int, side: int, how: str, geometry: tuple[float, float]) -> np.ndarray:
    """Centres of ``n`` cells on a view ``side`` pixels long, in view pixels."""
    j = np.arange(n, dtype=np.float64)
    if how == "bilinear":
        return (j + 0.5) * side / n
    a, b = geometry
    return a * j + b


def resample(low: np.ndarray, ys: np.ndarray, xs: np.ndarray, side: int = SIDE) -> torch.Tensor:
    """Samples ``low`` ``(h, w)`` taken at input positions ``ys``, ``xs`` (increasing)
    to a ``side`` x ``side`` map, linearly, held constant past the outer samples."""
    centres = np.arange(side) + 0.5
    rows = np.stack([np.interp(centres, xs, r) for r in low])
    out = np.stack([np.interp(centres, ys, c) for c in rows.T], axis=1)
    return torch.from_numpy(out.astype(np.float32))


# ---------------------------------------------------------------- caching


def view_side(scale: float) -> int:
    return round(SIDE * scale)


def offsets(n: int) -> list[int]:
    return [round(k * STRIDE / n) for k in range(n)]


def canvas(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The view pasted at ``(dy, dx)`` into a canvas one stride larger (zeros: the mean colour)."""
    return F.pad(x, (dx, STRIDE - dx, dy, STRIDE - dy))


def cache_shifts(model, inputs: torch.Tensor, targets: torch.Tensor) -> list[dict]:  # type: ignore[no-untyped-def]
    records: list[dict] = [{} for _ in range(len(inputs))]
    for scale, n in PHASES.items():
        x = inputs if scale == 1.0 else F.interpolate(inputs, scale_factor=scale, mode="bilinear")
        for dy in offsets(n):
            for dx in offsets(n):
                maps, _, _ = layer_cams(model, canvas(x, dy, dx), targets, {})
                for rec, m in zip(records, maps["gc_last"]):
                    rec[f"gc@{scale}+{dy},{dx}"] = m
    return records


def zoom_crop(box, width: int, height: int, margin: float) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """A square around ``box`` with ``margin`` of its longer side on each side,
    moved inside the photo and cut to it, in whole pixels."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(8.0, min(side, width, height))
    cx = min(max((x0 + x1) / 2, side / 2), width - side / 2)
    cy = min(max((y0 + y1) / 2, side / 2), height - side / 2)
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


def crop_input(model, photo: Image.Image, crop) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The crop resized to the model input, normalised as the model's own input."""
    pre = model.preprocessing
    h, w = pre.input_size
    resized = to_rgb(photo).resize((w, h), Image.Resampling.BICUBIC, box=crop, reducing_gap=3.0)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0)
    return pre.normalize(pixels)


def cache_zoom(model, chunk, inputs: torch.Tensor, targets: torch.Tensor, margin: float) -> list[dict]:  # type: ignore[no-untyped-def]
    # The multiscale maps (the default of the earlier rounds), without the affinity walk.
    first = ABLATIONS["multiscale"]
    maps = localization_maps(model, inputs, targets[:, None], first)
    _, placements = model.prepare([s.photo for s in chunk])
    records: list[dict] = [{} for _ in chunk]
    crops = []
    for s, placement, m in zip(chunk, placements, maps):
        (found,) = boxes_for(s.photo, placement, m, [None], first)  # type: ignore[list-item]
        crops.append(zoom_crop(found.box, s.photo.width, s.photo.height, margin))
    x = torch.stack([crop_input(model, s.photo, c) for s, c in zip(chunk, crops)])
    for scale in ZOOM_SCALES:
        xs = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="bilinear")
        cams, scores, _ = layer_cams(model, xs, targets, {})
        for rec, m in zip(records, cams["gc_last"]):
            rec[f"zoom{margin}@{scale}"] = m
        if scale == 1.0:
            probs = scores.softmax(1)
            top5 = scores.topk(5, dim=1).indices
            for j, rec in enumerate(records):
                rec[f"zoom{margin}_crop"] = np.array(crops[j])
                rec["photo_size"] = np.array(chunk[j].photo.size)
                rec[f"zoom{margin}_prob"] = float(probs[j, targets[j]])
                rec[f"zoom{margin}_in_top5"] = bool((top5[j] == targets[j]).any())
    return records


def cache(args: argparse.Namespace) -> None:
    if args.views == "shifts":
        fill_cache(
            args,
            args.cache / "shifts",
            lambda model, chunk, inputs, targets: cache_shifts(model, inputs, targets),
        )
    else:
        fill_cache(
            args,
            args.cache / f"zoom{args.margin}",
            lambda model, chunk, inputs, targets: cache_zoom(model, chunk, inputs, targets, args.margin),
        )


# ---------------------------------------------------------------- maps from the views


class Views:
    """Turns cached cells into maps on the 224 x 224 input."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.geometry = {side: strided_geometry(model, side) for side in self.sides()}

    @staticmethod
    def sides() -> list[int]:
        plain = [view_side(s) for s in (1.0, 1.5, 2.0, 2.5)]
        return sorted(set(plain + [view_side(s) + STRIDE for s in PHASES]))

    def plain(self, rec, scale: float, how: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """One view of localization_variants' cache (input resized by ``scale``)."""
        low = rec[f"gc_last@{scale}"]
        side = view_side(scale)
        return self.place(low, side, how, shift=(0, 0), per_input=SIDE / side)

    def shifted(self, rec, scale: float, n: int, how: str, stitch: bool) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """The ``n`` x ``n`` phases of one scale: each view's map brought onto the
        input and averaged, or (``stitch``) their cells interleaved into one grid
        ``n`` times finer, then resampled once."""
        side = view_side(scale)
        full = side + STRIDE
        geometry = self.geometry[full]
        phases = offsets(n)
        if not stitch:
            maps = [
                peak_normalised(self.place(rec[f"gc@{scale}+{dy},{dx}"], full, how, (dy, dx), SIDE / side))
                for dy in phases
                for dx in phases
            ]
            return sum(maps) / len(maps)
        h, w = rec[f"gc@{scale}+0,0"].shape
        fine = np.zeros((h * n, w * n), np.float32)
        for ky, dy in enumerate(phases):
            for kx, dx in enumerate(phases):
                fine[ky::n, kx::n] = rec[f"gc@{scale}+{dy},{dx}"]
        # The photo's point at canvas position p - d: a later phase samples earlier content.
        ys = np.concatenate([cell_centres(h, full, how, geometry) - d for d in phases])
        xs = np.concatenate([cell_centres(w, full, how, geometry) - d for d in phases])
        ys_fine = ys.reshape(n, h).T.ravel()
        xs_fine = xs.reshape(n, w).T.ravel()
        order_y, order_x = np.argsort(ys_fine, kind="stable"), np.argsort(xs_fine, kind="stable")
        fine = fine[order_y][:, order_x]
        return resample(fine, ys_fine[order_y] * SIDE / side, xs_fine[order_x] * SIDE / side)

    def place(self, low, full: int, how: str, shift, per_input: float) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """Cells ``low`` of a view ``full`` pixels wide whose photo content starts at
        ``shift`` ``(dy, dx)``, onto the input (``per_input``: input pixels per view pixel)."""
        h, w = low.shape
        geometry = self.geometry[full]
        ys = (cell_centres(h, full, how, geometry) - shift[0]) * per_input
        xs = (cell_centres(w, full, how, geometry) - shift[1]) * per_input
        return resample(low, ys, xs)


def multiscale(*makers: Callable[[dict], torch.Tensor]) -> Callable[[dict], torch.Tensor]:
    """The library's multi-view rule: each map over its peak, averaged."""
    if len(makers) == 1:
        return makers[0]
    return lambda r: sum(peak_normalised(m(r)) for m in makers) / len(makers)


def zoomed(views: Views, margin: float, scales, how: str, check: bool) -> Callable[[dict], object]:  # type: ignore[no-untyped-def]
    """The zoom pass's map on its crop; with ``check``, the first map (on the
    whole input) where the class left the crop's top 5."""
    first = multiscale(*(lambda r, s=s: views.plain(r, s, how) for s in (1.0, 1.5, 2.0)))

    def make(rec):  # type: ignore[no-untyped-def]
        if check and not bool(rec[f"zoom{margin}_in_top5"]):
            return first(rec)
        maps = [peak_normalised(zoom_view(rec, margin, s, how, views)) for s in scales]
        crop = tuple(int(v) for v in rec[f"zoom{margin}_crop"])
        size = tuple(int(v) for v in rec["photo_size"])
        placement = Placement(size, tuple(float(v) for v in crop))  # type: ignore[arg-type]
        return PlacedMap(sum(maps) / len(maps), placement, crop)  # type: ignore[arg-type]

    return make


def zoom_view(rec, margin: float, scale: float, how: str, views: Views) -> torch.Tensor:  # type: ignore[no-untyped-def]
    low = rec[f"zoom{margin}@{scale}"]
    side = view_side(scale)
    return views.place(low, side, how, (0, 0), SIDE / side)


# ---------------------------------------------------------------- variants


def variants(views: Views, only: str | None):  # type: ignore[no-untyped-def]
    found = []

    def add(name: str, make_map) -> None:  # type: ignore[no-untyped-def]
        if only is None or any(o in name for o in only.split("|")):
            found.append((name, make_map))

    def plain(scales, how):  # type: ignore[no-untyped-def]
        return multiscale(*(lambda r, s=s: views.plain(r, s, how) for s in scales))

    def shifted(spec, how, stitch):  # type: ignore[no-untyped-def]
        return multiscale(*(lambda r, s=s, n=n: views.shifted(r, s, n, how, stitch) for s, n in spec))

    s3 = (1.0, 1.5, 2.0)
    for how in ("bilinear", "geometric"):
        add(f"Grad-CAM 1x/1.5x/2x, cells at {how} centres", plain(s3, how))
        add(f"Grad-CAM 1x, cells at {how} centres", plain((1.0,), how))
        add(f"Grad-CAM 1x-2.5x, cells at {how} centres", plain((1.0, 1.5, 2.0, 2.5), how))
        # The 3x view is the canvas at offset 0 (only the shifted views were cached at 3x).
        three = shifted([(3.0, 1)], how, False)
        each = [lambda r, s=s: views.plain(r, s, how) for s in (1.0, 1.5, 2.0, 2.5)]
        add(f"Grad-CAM 1x-3x, cells at {how} centres", multiscale(*each, three))
        for n in (1, 2, 4):
            for stitch in (False, True) if n > 1 else (False,):
                rule = "stitched" if stitch else "averaged"
                add(f"Grad-CAM 1x, {n}x{n} phases {rule}, {how} centres", shifted([(1.0, n)], how, stitch))
        for stitch in (False, True):
            rule = "stitched" if stitch else "averaged"
            spec2 = [(1.0, 2), (1.5, 2), (2.0, 2)]
            add(f"Grad-CAM 1x/1.5x/2x, 2x2 phases {rule}, {how} centres", shifted(spec2, how, stitch))
            spec4 = [(1.0, 4), (1.5, 2), (2.0, 2)]
            add(f"Grad-CAM 1x (4x4)/1.5x/2x (2x2) phases {rule}, {how} centres", shifted(spec4, how, stitch))
            spec25 = [*spec2, (2.5, 2)]
            add(f"Grad-CAM 1x-2.5x, 2x2 phases {rule}, {how} centres", shifted(spec25, how, stitch))
            spec3 = [*spec25, (3.0, 2)]
            add(f"Grad-CAM 1x-3x, 2x2 phases {rule}, {how} centres", shifted(spec3, how, stitch))
        for margin in ZOOM_MARGINS:
            for check in (False, True):
                tail = ", first map where the class leaves the crop's top 5" if check else ""
                add(
                    f"zoom-in on the multiscale box, margin {margin}, 1x/1.5x/2x, {how} centres{tail}",
                    zoomed(views, margin, s3, how, check),
                )
    return found


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    scorer = Scorer(args.data, args.base, args.limit, more=tuple(args.cache / t for t in args.tags))
    views = Views(scorer.model)
    rows = [scorer.score(name, make, MEAN_CUT) for name, make in variants(views, args.only)]
    paired_with_multiscale(scorer.hits)
    if args.write:
        write_rows("localization_finer", rows, len(scorer.samples), partial=bool(args.only))


# The multiscale config's map (the default of the earlier rounds), the reference of every row.
MULTISCALE_ROW = "Grad-CAM 1x/1.5x/2x, cells at bilinear centres"


def paired_with_multiscale(hits: dict[str, list[bool]]) -> None:
    """Photos each variant gets right that the multiscale map misses, and the
    reverse (GT-known): how much of a difference is a few photos changing sides."""
    if MULTISCALE_ROW not in hits:
        return
    base = np.array(hits[MULTISCALE_ROW])
    for name, known in hits.items():
        k = np.array(known)
        print(f"{name:60s} vs multiscale: +{int((k & ~base).sum())} / -{int((~k & base).sum())} photos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["cache", "score"])
    parser.add_argument("--base", type=Path, default=Path("/tmp/locvar"), help="localization_variants' cache")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/locvarA"))
    parser.add_argument("--views", choices=["shifts", "zoom"], default="shifts")
    parser.add_argument(
        "--margin", type=float, default=0.25, help="the zoom crop's margin (of the box's side)"
    )
    parser.add_argument(
        "--tags", nargs="+", default=["shifts", "zoom0.25", "zoom0.0"], help="view caches to score with"
    )
    add_run_args(parser, "localization_finer")
    args = parser.parse_args()
    {"cache": cache, "score": score}[args.step](args)


if __name__ == "__main__":
    main()
