"""``deepinside demo``: the paper's figures on photos bundled with scikit-image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from .. import pictures
from ..explain import collect, explain_photos
from ..io.files import write_png
from ..io.results import save_saliency
from ..io.samples import SAMPLE_PHOTOS, sample_photo
from ..localization import PRESETS, localize
from ..models import Classifier, load_model
from ..visualization import visualize_class
from ..visualization.output import comparison_figure
from ._common import add_device_arg

DEMO_PHOTOS = SAMPLE_PHOTOS
DEMO_CLASSES = ("goldfish", "space shuttle", "tabby", "espresso")
PARTS = ("saliency", "localization", "classmodel")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the paper's methods on bundled photos and draw its figures")
    p.add_argument(
        "--out", type=Path, default=Path("deepinside-demo"), help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="figures to draw (default: all)"
    )
    add_device_arg(p)
    p.set_defaults(run=run)


def bundled_photos() -> list[Image.Image]:
    """Real photos shipped inside scikit-image (no download)."""
    return [sample_photo(name) for name in DEMO_PHOTOS]


def run(args: argparse.Namespace) -> int:
    model = load_model().to(args.device)
    photos = bundled_photos() if {"saliency", "localization"} & set(args.parts) else []
    if "saliency" in args.parts:
        path = write_png(
            args.out / "saliency_figure.png", saliency_figure(model, photos, args.out / "saliency")
        )
        print(f"wrote {path} and per-photo maps in {args.out / 'saliency'}", file=sys.stderr)
    if "localization" in args.parts:
        path = write_png(args.out / "localization_figure.png", localization_figure(model, photos))
        print(f"wrote {path}", file=sys.stderr)
    if "classmodel" in args.parts:
        path = write_png(args.out / "classmodel_figure.png", classmodel_figure(model))
        print(f"wrote {path}", file=sys.stderr)
    return 0


def saliency_figure(model: Classifier, photos: list[Image.Image], out: Path) -> Image.Image:
    """Like the paper's Figure 2: each photo, its top-1 saliency map and an
    overlay; each photo's maps are also written to ``out``."""
    rows, captions = [], []
    for r in collect(explain_photos(model, photos)):
        save_saliency(r, out, r.source, model.name)
        on_photo = r.maps[0].on_photo(r.placement)
        rows.append([r.photo, pictures.grey_map(on_photo), pictures.overlay(r.photo, on_photo)])
        top = r.predictions[0]
        captions.append(f"{r.source}: {top.label} ({top.probability:.0%})")
    return pictures.figure(
        rows, captions, title=f"Image-specific class saliency (Simonyan et al. 2013, Fig. 2) - {model.name}"
    )


def classmodel_figure(model: Classifier) -> Image.Image:
    """Like the paper's Figure 1: a few classes, the paper's preset beside the default."""
    results = [visualize_class(model, DEMO_CLASSES, preset=p, progress=None) for p in ("paper", "default")]
    return comparison_figure(
        results, ["paper", "default"], title="Class models (paper sec. 2): paper | default"
    )


def localization_figure(model: Classifier, photos: list[Image.Image]) -> Image.Image:
    """Like the paper's localisation figure: each photo with its top-1 boxes
    (paper config red, default green), then each config's map and mask."""
    columns = {name: localize(model, photos, top_k=1, config=PRESETS[name]) for name in ("paper", "default")}
    rows, captions = [], []
    for i, photo in enumerate(photos):
        paper, default = columns["paper"][i].boxes[0], columns["default"][i].boxes[0]
        boxed = pictures.draw_boxes(photo, [(paper.box, "paper"), (default.box, "default")])
        rows.append(
            [
                boxed,
                pictures.grey_map(paper.saliency),
                pictures.mask_image(paper.mask),
                pictures.heatmap(default.saliency),
                pictures.mask_image(default.mask),
            ]
        )
        captions.append(
            f"{paper.prediction.label}: paper (gradient, GraphCut) map + mask; "
            f"default ({PRESETS['default'].method}) map + mask"
        )
    return pictures.figure(
        rows, captions, cell=200, title="Localisation for free (Simonyan et al. 2013, section 3.1)"
    )
