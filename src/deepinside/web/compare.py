"""The "Compare" tab's work: maps side by side with how good each is, by the
library's own metrics (:mod:`deepinside.evaluation`): deletion and insertion
AUC always, the pointing game where the user gives the object's box."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .. import pictures
from ..attribution.methods import Method
from ..errors import DeepInsideError
from ..evaluation import deletion_insertion, load_annotations, pointing_game
from ..explain import PhotoSaliency, collect, explain_photos
from ..localization.boxes import Box
from ..models.classifier import Classifier

_NUMBER = r"-?\d+(?:\.\d+)?"


@dataclass(frozen=True)
class Scored:
    """One map with its scores."""

    photo_name: str
    method: str
    label: str
    overlay: Image.Image
    deletion_auc: float
    insertion_auc: float
    pointing_hit: bool | None  # None: no box given

    def caption(self, several_photos: bool) -> str:
        """The map's method, and its photo where the maps are of several
        (short enough to show whole under a map; the scores are in the table)."""
        return f"{self.method} · {self.photo_name}" if several_photos else self.method

    def row(self) -> list[object]:
        hit = "" if self.pointing_hit is None else ("hit" if self.pointing_hit else "miss")
        return [
            self.photo_name,
            self.method,
            self.label,
            round(self.deletion_auc, 4),
            round(self.insertion_auc, 4),
            hit,
        ]


TABLE_HEADERS = [
    "photo",
    "method",
    "class",
    "deletion AUC (lower is better)",
    "insertion AUC (higher is better)",
    "pointing game",
]


def parse_boxes(text: str | None) -> tuple[Box, ...]:
    """Boxes typed as ``x0 y0 x1 y1`` in photo pixels, one per line (or
    separated by ``;``); commas or spaces between the numbers."""
    boxes = []
    for part in re.split(r"[;\n]", text or ""):
        if not part.strip():
            continue
        numbers = re.findall(_NUMBER, part)
        if len(numbers) != 4 or re.sub(rf"{_NUMBER}|[\s,]", "", part):
            raise DeepInsideError(f"a box is four numbers x0 y0 x1 y1 in photo pixels, got {part.strip()!r}")
        x0, y0, x1, y1 = map(float, numbers)
        if not (x0 < x1 and y0 < y1):
            raise DeepInsideError(f"box {part.strip()!r}: needs x0 < x1 and y0 < y1")
        boxes.append((x0, y0, x1, y1))
    return tuple(boxes)


def check_inside(boxes: Sequence[Box], size: tuple[int, int]) -> None:
    """Refuse a box that reaches outside the photo (``size``: width, height):
    boxes are in the photo's own pixels, and a box from another photo's
    scale would score the pointing game against the wrong place."""
    width, height = size
    for x0, y0, x1, y1 in boxes:
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise DeepInsideError(
                f"box {x0:g} {y0:g} {x1:g} {y1:g} reaches outside the {width}x{height} photo: "
                "give boxes in the photo's own pixels"
            )


def photo_name(photo: Image.Image) -> str:
    """The name a photo was uploaded or picked under (see :func:`.uploads.read_upload`)."""
    return str(getattr(photo, "filename", "") or "photo")


def annotation_boxes(path: str | Path, photo_name: str, num_classes: int) -> tuple[Box, ...]:
    """The boxes of ``photo_name`` in an uploaded annotations file (the
    evaluation format); an only entry counts for any photo."""
    entries = load_annotations(path, num_classes)
    for entry in entries:
        if Path(entry.image).stem == Path(photo_name).stem:
            return entry.boxes
    if len(entries) == 1:
        return entries[0].boxes
    raise DeepInsideError(f"the annotations file has no entry for {photo_name}")


def score_maps(
    model_results: Sequence[tuple[PhotoSaliency, torch.Tensor]],
    model: torch.nn.Module,
    boxes: dict[str, tuple[Box, ...]],
    steps: int,
) -> list[Scored]:
    out = []
    for result, inputs in model_results:
        (class_map,) = result.maps
        target = torch.tensor([class_map.prediction.class_index], device=inputs.device)
        curves = deletion_insertion(model, inputs, class_map.on_input[None], target, steps=steps)
        on_photo = class_map.on_photo(result.placement)
        photo_boxes = boxes.get(result.source, ())
        out.append(
            Scored(
                result.source,
                result.method,
                class_map.prediction.label,
                pictures.overlay(result.photo, on_photo),
                float(curves.deletion_auc[0]),
                float(curves.insertion_auc[0]),
                pointing_game(on_photo, photo_boxes) if photo_boxes else None,
            )
        )
    return out


def compare(
    model: Classifier,
    photos: Sequence[Image.Image],
    methods: Sequence[Method],
    target: int | None,
    boxes: dict[str, tuple[Box, ...]],
    steps: int = 20,
) -> list[Scored]:
    """Every method on every photo (the page asks for several methods on
    one photo, or one method on several), each map scored."""
    if not photos:
        raise DeepInsideError("upload a photo or pick a sample first")
    for photo in photos:
        check_inside(boxes.get(photo_name(photo), ()), photo.size)
    found = []
    for photo in photos:
        inputs, _ = model.prepare([photo])
        for method in methods:
            (result,) = collect(
                explain_photos(model, [photo], None if target is None else [target], method=method)
            )
            found.append((result, inputs))
    return score_maps(found, model, boxes, steps)
