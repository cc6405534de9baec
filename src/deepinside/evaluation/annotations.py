"""Ground truth for evaluation: photos with their class and object boxes.

The format is that of ``imagenet-val-loc-dev``: a JSON list of entries
``{"image": path relative to the file, "class_index": int, "width": W,
"height": H, "boxes": [[x0, y0, x1, y1], ...]}`` with boxes in the image's
pixels (x right, y down). An optional ``"original_size": [W, H]`` gives the
size of the photo before it was resized to the stored one (the pointing
game's tolerance is in the original's pixels).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeepInsideError
from ..localization.boxes import Box


@dataclass(frozen=True)
class Annotated:
    image: Path
    class_index: int
    boxes: tuple[Box, ...]
    size: tuple[int, int] | None  # (width, height) as declared, if declared
    original_size: tuple[int, int] | None = None  # (width, height) of the photo before it was resized


def load_annotations(path: str | Path, num_classes: int = 1000) -> list[Annotated]:
    """Read and check an annotation file; a bad entry is an error naming it."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise DeepInsideError(f"{path}: no such annotations file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeepInsideError(f"{path}: not a JSON annotations file ({err})") from None
    if not isinstance(entries, list) or not entries:
        raise DeepInsideError(f"{path}: expected a non-empty JSON list of entries")
    return [_entry(path, i, e, num_classes) for i, e in enumerate(entries)]


def _entry(path: Path, i: int, e: object, num_classes: int) -> Annotated:
    where = f"{path}: entry {i}"
    if not isinstance(e, dict) or "image" not in e or "class_index" not in e:
        raise DeepInsideError(f"{where}: needs 'image' and 'class_index'")
    where = f"{path}: entry {i} ({e['image']})"
    cls = e["class_index"]
    if not isinstance(cls, int) or isinstance(cls, bool) or not 0 <= cls < num_classes:
        raise DeepInsideError(
            f"{where}: class_index {cls!r} is not a class of this model (0 to {num_classes - 1})"
        )
    size = None
    if "width" in e and "height" in e:
        size = (int(e["width"]), int(e["height"]))
    original = _original_size(where, e.get("original_size"))
    boxes = []
    for box in e.get("boxes", []):
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise DeepInsideError(f"{where}: a box must be [x0, y0, x1, y1], got {box!r}")
        x0, y0, x1, y1 = map(float, box)
        if not (x0 < x1 and y0 < y1):
            raise DeepInsideError(f"{where}: box {box} is empty or inverted (need x0 < x1 and y0 < y1)")
        if size is not None and (x0 < -1 or y0 < -1 or x1 > size[0] + 1 or y1 > size[1] + 1):
            raise DeepInsideError(f"{where}: box {box} lies outside the {size[0]}x{size[1]} image")
        boxes.append((x0, y0, x1, y1))
    return Annotated((path.parent / str(e["image"])).resolve(), cls, tuple(boxes), size, original)


def _original_size(where: str, value: object) -> tuple[int, int] | None:
    if value is None:
        return None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise DeepInsideError(
            f"{where}: original_size must be [width, height] in whole pixels, got {value!r}"
        )
    return value[0], value[1]


def match_images(annotations: list[Annotated], images: list[Path] | None) -> list[Annotated]:
    """The annotated entries for ``images`` (all entries when None), each with
    its ``image`` replaced by the file given: an entry is found by the image's
    path or, failing that, by its file name alone (so photos copied elsewhere
    still match). Every image must have an entry, or it is an error naming the
    first that has none."""
    if images is None:
        return annotations
    by_path = {a.image: a for a in annotations}
    by_name: dict[str, list[Annotated]] = {}
    for a in annotations:
        by_name.setdefault(a.image.name, []).append(a)
    matched = []
    for p in images:
        entry = by_path.get(p.resolve())
        if entry is None and len(by_name.get(p.name, [])) == 1:
            entry = by_name[p.name][0]
        if entry is None:
            raise DeepInsideError(
                f"{p}: has no entry in the annotations file; give the matching file or drop --annotations"
            )
        matched.append(dataclasses.replace(entry, image=p))
    return matched
