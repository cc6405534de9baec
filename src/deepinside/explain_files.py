"""Saliency results as files: grey map, overlay, raw values and a JSON record per photo.

Files are named as :mod:`deepinside.io.names` says; a run with another method
into the same folder adds its files and its maps to the photo's record.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import pictures
from .errors import DeepInsideError
from .explain import ClassMap, PhotoSaliency
from .io.files import write_json, write_npy, write_npz, write_png
from .io.names import class_part, photo_file

#: How the raw map (the values, photo size) is stored: ``npy`` float32,
#: ``npz`` float32 compressed, ``npz16`` float16 compressed, or ``none``.
RAW_FORMATS = ("npy", "npz", "npz16", "none")


def save_saliency(result: PhotoSaliency, out_dir: Path, stem: str, model_name: str, raw: str = "npy") -> Path:
    """Write every map of ``result`` and, last, the photo's JSON record; return its path.

    Files, per class: ``STEM.METHOD.CLASS.saliency.png`` (the paper's grey map
    on the photo's pixels), ``.overlay.png`` and, unless ``raw`` is ``none``,
    ``.raw.npy`` or ``.raw.npz`` (array ``map``). ``STEM.json`` keeps the maps of
    other methods already recorded there for the same photo and model.
    """
    if raw not in RAW_FORMATS:
        raise DeepInsideError(f"raw maps are stored as one of {', '.join(RAW_FORMATS)}, got {raw!r}")
    maps = [_save_map(result, out_dir, stem, class_map, raw) for class_map in result.maps]
    record = {
        "image": result.source,
        "width": result.photo.width,
        "height": result.photo.height,
        "model": model_name,
        "input_box": list(result.placement.box),
        "predictions": [p.as_dict() for p in result.predictions],
    }
    path = out_dir / f"{stem}.json"
    kept = [m for m in _earlier_maps(path, record) if m.get("method") != result.method]
    maps = kept + maps
    record["methods"] = list(dict.fromkeys(str(m["method"]) for m in maps))
    record["maps"] = maps
    return write_json(path, record)


def _save_map(
    result: PhotoSaliency, out_dir: Path, stem: str, class_map: ClassMap, raw: str
) -> dict[str, object]:
    p = class_map.prediction
    on_photo = class_map.on_photo(result.placement)

    def name(kind: str, ext: str) -> str:
        return photo_file(stem, result.method, kind, ext, class_part(p.class_index, p.label))

    files = {
        "saliency": write_png(out_dir / name("saliency", "png"), pictures.grey_map(on_photo)),
        "overlay": write_png(out_dir / name("overlay", "png"), pictures.overlay(result.photo, on_photo)),
    }
    kept = {"npy": "npy", "npz": "npz", "npz16": "npz", "none": None}[raw]
    for ext in {"npy", "npz"} - {kept}:  # an earlier run's values in the other format would be stale
        (out_dir / name("raw", ext)).unlink(missing_ok=True)
    if kept is not None:
        files["raw"] = _write_raw(out_dir / name("raw", kept), on_photo, raw)
    return {
        **p.as_dict(),
        "method": result.method,
        **({"layer": result.layer} if result.layer is not None else {}),
        "max": float(on_photo.max()),
        "files": {k: v.name for k, v in files.items()},
    }


def _write_raw(path: Path, values: np.ndarray, raw: str) -> Path:
    if raw == "npy":
        return write_npy(path, values.astype(np.float32, copy=False))
    kept = values.astype(np.float16 if raw == "npz16" else np.float32, copy=False)
    return write_npz(path, {"map": kept}, compress=True)


def _earlier_maps(path: Path, record: dict[str, object]) -> list[dict[str, object]]:
    """The maps already recorded in ``path`` for the same photo and model (none
    where the file is missing, unreadable, or about another photo or model)."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    same = isinstance(earlier, dict) and all(
        earlier.get(k) == record[k] for k in ("image", "model", "width", "height")
    )
    maps = earlier.get("maps") if same else None
    if not isinstance(maps, list):
        return []
    # Records written before maps named their method had one method for all.
    return [{"method": earlier.get("method"), **m} for m in maps if isinstance(m, dict)]
