"""The "Explain a photo" tab's work: the command line's own calls
(:func:`~deepinside.explain.explain_photos`, :func:`~deepinside.explain_files.save_saliency`,
the localisation pipeline), one method at a time so that the first map
shows while the others are computed."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import pictures
from ..attribution import METHODS
from ..attribution.methods import Method, Reduction, method_from_name, options_of
from ..errors import DeepInsideError
from ..explain import PhotoFailure, PhotoSaliency, explain_photos
from ..explain_files import save_saliency
from ..localization import config_for, localize_inputs
from .session import Server, file_stem
from .shown import PictureFiles

#: Channel reductions offered (the paper's first).
REDUCTIONS: tuple[Reduction, ...] = ("max-abs", "sum-abs", "l2", "sum")


def check_methods(
    names: Sequence[str] | None, server: Server, settings: Mapping[str, Mapping[str, object]] | None = None
) -> list[Method]:
    """The chosen methods, each with its options from ``settings`` (method ->
    option -> value, as :func:`.options.method_settings` reads the page), and
    any option left to a default above the server's cap set to the cap."""
    if not names:
        raise DeepInsideError("choose at least one method")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise DeepInsideError(f"unknown method {unknown[0]!r}: use one of {', '.join(METHODS)}")
    settings = settings or {}
    return [
        method_from_name(n, **within_cap(METHODS[n], settings.get(n, {}), server.limits.max_samples))
        for n in dict.fromkeys(names)
    ]


def within_cap(method: type[Method], chosen: Mapping[str, object], cap: int) -> dict[str, object]:
    """``chosen`` options, plus the cap for each option that sets how many
    passes a map costs (it declares a cheap setting) whose default is above
    it: a tab with no control for it (Compare) must not exceed the server's limit."""
    options = dict(chosen)
    for name, (default, declared) in options_of(method).items():
        over = isinstance(default, int) and default > cap
        if declared.cheap is not None and name not in options and over:
            options[name] = cap
    return options


def check_reduction(reduce: str) -> Reduction:
    """The channel reduction chosen, or a :class:`DeepInsideError` naming those offered."""
    for known in REDUCTIONS:
        if reduce == known:
            return known
    raise DeepInsideError(f"unknown channel reduction {reduce!r}: use one of {', '.join(REDUCTIONS)}")


@dataclass
class Explained:
    """What the tab shows so far for one photo and class."""

    photo: Image.Image
    folder: Path
    results: list[PhotoSaliency] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)  # (H, W) float32 per method, photo pixels
    files: list[str] = field(default_factory=list)
    boxes: str | None = None  # the pictures shown: files (see .shown)
    mask: str | None = None
    box_note: str = ""
    shown: PictureFiles = field(init=False)

    def __post_init__(self) -> None:
        self.shown = PictureFiles(self.folder)

    @property
    def names(self) -> list[str]:
        return [r.method for r in self.results]

    def grey_maps(self) -> list[tuple[str, str]]:
        return [
            (self.shown.file(("map", k), name, functools.partial(pictures.grey_map, m)), name)
            for k, (m, name) in enumerate(zip(self.maps, self.names))
        ]

    def overlays(self, opacity: float) -> list[tuple[str, str]]:
        return [
            (
                self.shown.file(
                    ("overlay", k, opacity), name, functools.partial(pictures.overlay, self.photo, m, opacity)
                ),
                name,
            )
            for k, (m, name) in enumerate(zip(self.maps, self.names))
        ]


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
            reduce=check_reduction(reduce),
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
    ((found,),) = localize_inputs(model, [photo], inputs, placements, [[chosen]], config)
    done.boxes = done.shown.new(
        "box", pictures.draw_boxes(photo, [(found.box, f"{chosen.label} ({config.name})")])
    )
    done.mask = done.shown.new("mask", pictures.mask_image(found.mask, photo.size))
    done.box_note = found.note
    yield done


def saved_files(record_path: Path, method: str) -> list[str]:
    """The raw map and overlay files :func:`save_saliency` wrote for one photo and method."""
    record = json.loads(record_path.read_text("utf-8"))
    maps = [m for m in record["maps"] if m["method"] == method]
    return [f for m in maps for key, f in m["files"].items() if key in ("raw", "overlay")]
