"""``deepinside demo``: the paper's figures on photos bundled with scikit-image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from .. import pictures
from ..errors import DeepInsideError
from ..explain import collect, explain_photos
from ..io.files import write_png
from ..io.results import save_saliency
from ..models import load_model

DEMO_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the paper's methods on bundled photos and draw its figures")
    p.add_argument("--out", type=Path, default=Path("deepinside-demo"), help="output folder (default %(default)s)")
    p.set_defaults(run=run)


def bundled_photos() -> list[Image.Image]:
    """Real photos shipped inside scikit-image (no download)."""
    try:
        from skimage import data
    except ImportError:
        raise DeepInsideError("the demo photos come from scikit-image: pip install 'deepinside[demo]'") from None
    photos = []
    for name in DEMO_PHOTOS:
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        photo.filename = name  # type: ignore[attr-defined]
        photos.append(photo)
    return photos


def run(args: argparse.Namespace) -> int:
    model = load_model()
    results = collect(explain_photos(model, bundled_photos()))
    rows, captions = [], []
    for r in results:
        save_saliency(r, args.out / "saliency", r.source, model.name)
        on_photo = r.maps[0].on_photo(r.placement)
        rows.append([r.photo, pictures.grey_map(on_photo), pictures.overlay(r.photo, on_photo)])
        top = r.predictions[0]
        captions.append(f"{r.source}: {top.label} ({top.probability:.0%})")
    sheet = pictures.figure(
        rows, captions, title=f"Image-specific class saliency (Simonyan et al. 2013, Fig. 2) - {model.name}"
    )
    path = write_png(args.out / "saliency_figure.png", sheet)
    print(f"wrote {path} and per-photo maps in {args.out / 'saliency'}", file=sys.stderr)
    return 0
