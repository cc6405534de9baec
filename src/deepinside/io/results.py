"""Saliency results as files: grey map, overlay, raw ``.npy`` and a JSON record."""

from __future__ import annotations

import re
from pathlib import Path

from .. import pictures
from ..explain import PhotoSaliency
from .files import write_json, write_npy, write_png


def slug(text: str) -> str:
    """A file-name-safe version of a class label."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "class"


def save_saliency(result: PhotoSaliency, out_dir: Path, stem: str, model_name: str) -> Path:
    """Write every map of ``result`` and, last, its JSON record; return the JSON path.

    Files, per class: ``STEM.CLASS-LABEL.saliency.png`` (the paper's grey map on
    the photo's pixels), ``.overlay.png`` and ``.npy`` (float32, photo size).
    """
    maps = []
    for class_map in result.maps:
        p = class_map.prediction
        base = f"{stem}.{p.class_index:03d}-{slug(p.label)}"
        on_photo = class_map.on_photo(result.placement)
        files = {
            "saliency": write_png(out_dir / f"{base}.saliency.png", pictures.grey_map(on_photo)),
            "overlay": write_png(out_dir / f"{base}.overlay.png", pictures.overlay(result.photo, on_photo)),
            "raw": write_npy(out_dir / f"{base}.npy", on_photo),
        }
        maps.append(
            {**p.as_dict(), "max": float(on_photo.max()), "files": {k: v.name for k, v in files.items()}}
        )
    record = {
        "image": result.source,
        "width": result.photo.width,
        "height": result.photo.height,
        "model": model_name,
        "method": result.method,
        "input_box": list(result.placement.box),
        "predictions": [p.as_dict() for p in result.predictions],
        "maps": maps,
    }
    return write_json(out_dir / f"{stem}.json", record)
