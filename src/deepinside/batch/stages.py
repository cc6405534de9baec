"""The two stages every engine runs: the model's (:func:`explain_batch`,
a whole batch of decoded photos at once) and the files' (:func:`finish_photo`,
one photo's boxes, maps and pictures, written off the model's path)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import pictures
from ..attribution.methods import method_from_name
from ..explain import explain_inputs
from ..io.files import write_npz, write_png
from ..io.names import class_part, key_stem, maps_file, photo_file
from ..io.prefetch import DecodedPhoto
from ..localization import LocalizationConfig, boxes_for, config_for, localization_maps, refine
from ..models.classifier import Classifier, Prediction
from ..models.preprocessing import Placement
from .index import Row
from .inputs import PhotoEntry
from .settings import BatchSettings

MAPS_FOLDER = "maps"
PICTURES_FOLDER = "pictures"


@dataclass
class PhotoMaps:
    """The model's work on one photo, waiting for its files to be written."""

    entry: PhotoEntry
    decoded: DecodedPhoto[Placement]
    predictions: list[Prediction] = field(default_factory=list)  # the top 5 (or more)
    explained: list[Prediction] = field(default_factory=list)  # the K classes mapped
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # method: (K, H, W) float32, on the input
    for_boxes: np.ndarray | None = None  # (K, H, W) maps the boxes are cut from
    box_config: LocalizationConfig | None = None  # how they are cut, as it runs on the model
    model_seconds: float = 0.0


def explain_batch(
    model: Classifier, batch: list[tuple[PhotoEntry, DecodedPhoto[Placement]]], settings: BatchSettings
) -> list[PhotoMaps]:
    """Every method's maps for a batch of decoded photos, in one batched call per method."""
    start = time.perf_counter()
    device = next(model.parameters(), torch.empty(0)).device
    inputs = torch.from_numpy(np.stack([_model_input(d) for _, d in batch])).to(device)
    k = settings.top_k()
    targets = None if isinstance(settings.targets, str) else settings.targets
    found = explain_inputs(model, inputs, settings.methods, targets, k or 1, settings.reduce)
    scores, classes, computed = found.scores, found.classes, found.maps
    box_config = None if settings.localize is None else config_for(model, settings.localize)
    for_boxes = _maps_for_boxes(model, inputs, classes, computed, settings, box_config)
    # One copy to the CPU per batch: reading GPU values one by one would wait for the GPU each time.
    scores, classes = scores.float().cpu(), classes.cpu()
    top = model.predictions(scores, max(5, classes.shape[1]))
    chosen = model.predictions_of(scores, classes)
    maps = {name: m.float().cpu().numpy() for name, m in computed.items()}
    boxes = for_boxes.float().cpu().numpy() if for_boxes is not None else None
    seconds = (time.perf_counter() - start) / len(batch)
    results = []
    for b, (entry, decoded) in enumerate(batch):
        explained = chosen[b]
        results.append(
            PhotoMaps(
                entry,
                decoded,
                top[b],
                explained,
                {name: m[b] for name, m in maps.items()},
                None if boxes is None else boxes[b],
                box_config,
                seconds,
            )
        )
    return results


def _model_input(decoded: DecodedPhoto[Placement]) -> np.ndarray:
    if decoded.input is None:  # the engines hand over only photos read with the preprocessing
        raise ValueError(f"{decoded.source}: read without the model's preprocessing")
    return decoded.input


def _maps_for_boxes(
    model: Classifier,
    inputs: torch.Tensor,
    classes: torch.Tensor,
    computed: dict[str, torch.Tensor],
    settings: BatchSettings,
    config: LocalizationConfig | None,
) -> torch.Tensor | None:
    if config is None:
        return None
    # One view of the same method with the same options is the map batch already
    # computed: only the later steps run again (objectness mixes in other views).
    wanted = method_from_name(config.method, **dict(config.method_options))
    one_view = config.scales == (1.0,) and not config.flip and not config.objectness
    if one_view and wanted in settings.methods and settings.reduce == "max-abs":
        return refine(model, inputs, computed[config.method], config)
    return localization_maps(model, inputs, classes, config)


def finish_photo(out: Path, done: PhotoMaps, settings: BatchSettings) -> Row:
    """Cut the boxes, write the maps (and pictures), and return the photo's index row."""
    start = time.perf_counter()
    decoded, entry = done.decoded, done.entry
    assert decoded.photo is not None and decoded.placement is not None
    row = failure_row(entry, decoded)
    boxes = []
    if done.for_boxes is not None:
        assert done.box_config is not None
        found = boxes_for(
            decoded.photo,
            decoded.placement,
            torch.from_numpy(done.for_boxes),
            done.explained,
            done.box_config,
        )
        boxes = [_box_row(b.prediction, b.box, b.note) for b in found]
    maps_name = maps_file(entry.key)
    write_maps(out / MAPS_FOLDER / maps_name, done, settings.float16, settings.compress)
    written = _write_pictures(out / PICTURES_FOLDER, done) if settings.pictures else []
    row.update(
        width=decoded.photo.width,
        height=decoded.photo.height,
        predictions=[p.as_dict() for p in done.predictions],
        maps=[
            {
                "method": method,
                "class_index": p.class_index,
                "max": float(m.max()),
                "mean": float(m.mean()),
                "std": float(m.std()),
            }
            for method, maps in done.maps.items()
            for p, m in zip(done.explained, maps)
        ],
        boxes=boxes,
        maps_file=maps_name,
        pictures=written,
        model_s=done.model_seconds,
        write_s=time.perf_counter() - start,
    )
    return row


def _write_pictures(folder: Path, done: PhotoMaps) -> list[str]:
    """An overlay per method and class, named ``STEM.METHOD.CLASS.overlay.png``
    as :mod:`deepinside.io.names` says; return the names under ``folder``."""
    photo, placement = done.decoded.photo, done.decoded.placement
    assert photo is not None and placement is not None
    written = []
    for method, maps in done.maps.items():
        on_photo = placement.to_photo(torch.from_numpy(maps)).numpy()
        for p, one in zip(done.explained, on_photo):
            name = photo_file(
                key_stem(done.entry.key), method, "overlay", "png", class_part(p.class_index, p.label)
            )
            write_png(folder / name, pictures.overlay(photo, one))
            written.append(name)
    return written


def failure_row(entry: PhotoEntry, decoded: DecodedPhoto[Placement]) -> Row:
    """A photo's row before its results: all there is for one that failed."""
    return {
        "path": entry.key,
        "sha256": decoded.sha256,
        "bytes": decoded.size,
        "width": None,
        "height": None,
        "true_class": entry.true_class,
        "predictions": [],
        "maps": [],
        "boxes": [],
        "maps_file": None,
        "pictures": [],
        "decode_s": decoded.seconds,
        "model_s": None,
        "write_s": None,
        "error": decoded.error or None,
    }


def _box_row(prediction: Prediction, box: tuple[float, float, float, float], note: str) -> Row:
    x0, y0, x1, y1 = (round(float(v), 2) for v in box)
    return {
        "class_index": prediction.class_index,
        "label": prediction.label,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "fallback": note or None,
    }


def write_maps(path: Path, done: PhotoMaps, float16: bool, compress: bool = False) -> None:
    """One ``.npz`` per photo: each method's maps ``(K, H, W)`` on the model
    input, ``classes`` ``(K,)`` and ``input_box`` (where the input lies in the
    photo, for :meth:`~deepinside.models.preprocessing.Placement.to_photo`).
    The same maps give the same bytes (no time stamps), so a rerun's file
    equals the first run's. ``compress`` deflates the arrays."""
    dtype = np.float16 if float16 else np.float32
    assert done.decoded.placement is not None
    arrays = {
        **{method: maps.astype(dtype) for method, maps in done.maps.items()},
        "classes": np.array([p.class_index for p in done.explained], dtype=np.int32),
        "input_box": np.array(done.decoded.placement.box, dtype=np.float64),
    }
    # Stored, not deflated, unless asked: a float32 gradient map's mantissas
    # are noise, so zlib saves little and costs a share of the model's time
    # (docs/batch.md). Durable: its row may reach a flushed shard first.
    write_npz(path, arrays, compress, durable=True)


def finish_safely(out: Path, done: PhotoMaps, settings: BatchSettings) -> Row:
    """:func:`finish_photo`, with a photo-specific failure (a segmentation
    that fails on an odd map, a picture that cannot be drawn) made that
    photo's failed row; a failing disk (OSError) stops the run."""
    try:
        return finish_photo(out, done, settings)
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - one photo's problem must not stop a dataset
        row = failure_row(done.entry, done.decoded)
        row["error"] = f"{done.entry.key}: {type(err).__name__}: {err}"
        return row


__all__ = [
    "PhotoMaps",
    "explain_batch",
    "failure_row",
    "finish_photo",
    "finish_safely",
    "write_maps",
]
