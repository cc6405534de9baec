"""The "Explain a photo" tab's work: the command line's own calls
(:func:`~deepinside.explain.explain_photos`, :func:`~deepinside.explain_files.save_saliency`,
the localisation pipeline), one method at a time so that the first map
shows while the others are computed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import pictures
from ..attribution import METHODS
from ..attribution.methods import Method, method_from_name
from ..errors import DeepInsideError
from ..explain import PhotoFailure, PhotoSaliency, explain_photos
from ..explain_files import save_saliency
from ..localization import config_for
from ..localization.localize import boxes_for, explain_maps
from .session import Server, file_stem

#: Channel reductions offered (the paper's first).
REDUCTIONS = ("max-abs", "sum-abs", "l2", "sum")


@dataclass(frozen=True)
class MethodOptions:
    """The main options of the methods, as the page sets them."""

    reduce: str = "max-abs"
    samples: int = 50
    noise: float = 0.15
    variant: str = "mean"
    ig_steps: int = 50
    baseline: float = 0.0

    def method(self, name: str) -> Method:
        by_method: dict[str, dict[str, object]] = {
            "smoothgrad": {"samples": self.samples, "noise": self.noise, "variant": self.variant},
            "integrated-gradients": {"steps": self.ig_steps, "baseline": self.baseline},
        }
        return method_from_name(name, **by_method.get(name, {}))


def check_methods(names: Sequence[str] | None, options: MethodOptions, server: Server) -> list[Method]:
    """The chosen methods, checked against the server's limits."""
    if not names:
        raise DeepInsideError("choose at least one method")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise DeepInsideError(f"unknown method {unknown[0]!r}: use one of {', '.join(METHODS)}")
    if options.reduce not in REDUCTIONS:
        raise DeepInsideError(
            f"unknown channel reduction {options.reduce!r}: use one of {', '.join(REDUCTIONS)}"
        )
    cap = server.limits.max_samples
    for what, value in (
        ("smoothgrad samples", options.samples),
        ("integrated-gradients steps", options.ig_steps),
    ):
        if not 1 <= int(value) <= cap:
            raise DeepInsideError(f"{what} must be between 1 and {cap} on this server, got {value}")
    return [options.method(n) for n in dict.fromkeys(names)]


@dataclass
class Explained:
    """What the tab shows so far for one photo and class."""

    photo: Image.Image
    folder: Path
    results: list[PhotoSaliency] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)  # (H, W) float32 per method, photo pixels
    files: list[str] = field(default_factory=list)
    boxes: Image.Image | None = None
    mask: Image.Image | None = None
    box_note: str = ""

    @property
    def names(self) -> list[str]:
        return [r.method for r in self.results]

    def grey_maps(self) -> list[tuple[Image.Image, str]]:
        return [(pictures.grey_map(m), name) for m, name in zip(self.maps, self.names)]

    def overlays(self, opacity: float) -> list[tuple[Image.Image, str]]:
        return [(pictures.overlay(self.photo, m, opacity), name) for m, name in zip(self.maps, self.names)]


def explain(
    server: Server,
    photo: Image.Image | None,
    target: int | None,
    methods: Sequence[Method],
    reduce: str = "max-abs",
    localization: str = "default",
) -> Iterator[Explained]:
    """Yields the growing result: after each method's map, then after the
    localisation box and mask of the class (the maps' class)."""
    if photo is None:
        raise DeepInsideError("upload a photo or pick a sample first")
    model = server.model
    config = config_for(model, localization)
    done = Explained(photo, server.result_folder())
    stem = file_stem(photo)
    map_files: list[str] = []
    for method in methods:
        (result,) = explain_photos(
            model,
            [photo],
            targets=None if target is None else [target],
            method=method,
            reduce=reduce,  # type: ignore[arg-type]
        )
        if isinstance(result, PhotoFailure):  # a decoded photo cannot fail to read
            raise DeepInsideError(result.reason)
        record = save_saliency(result, done.folder, stem, model.name)
        (class_map,) = result.maps
        done.results.append(result)
        done.maps.append(class_map.on_photo(result.placement))
        map_files += [str(done.folder / name) for name in saved_files(record, method.name)]
        done.files = [*map_files, str(record)]  # the photo's record lists every method's maps
        yield done
    chosen = done.results[0].maps[0].prediction
    inputs, placements = model.prepare([photo])
    maps = explain_maps(model, inputs, torch.tensor([[chosen.class_index]], device=inputs.device), config)
    (found,) = boxes_for(photo, placements[0], maps[0], [chosen], config)
    done.boxes = pictures.draw_boxes(photo, [(found.box, f"{chosen.label} ({config.name})")])
    done.mask = pictures.mask_image(found.mask, photo.size)
    done.box_note = found.note
    yield done


def saved_files(record_path: Path, method: str) -> list[str]:
    """The raw map and overlay files :func:`save_saliency` wrote for one photo and method."""
    record = json.loads(record_path.read_text("utf-8"))
    maps = [m for m in record["maps"] if m["method"] == method]
    return [f for m in maps for key, f in m["files"].items() if key in ("raw", "overlay")]
