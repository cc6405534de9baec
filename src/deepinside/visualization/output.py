"""Class model visualisations as pictures and files: a contact sheet, one PNG
per class, and each class's objective log as JSON and CSV.

The render loop never imports this module.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..io.files import atomic_write, write_json, write_png
from ..io.names import class_part
from ..pictures import figure
from ..pictures import font as _font
from .result import ClassModels


def to_picture(image: torch.Tensor) -> Image.Image:
    """One image ``(3, H, W)`` in [0, 1] as an 8-bit RGB picture."""
    a = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(a), mode="RGB")


def contact_sheet(
    images: torch.Tensor | Sequence[Image.Image],
    captions: Sequence[str],
    columns: int | None = None,
    cell: int = 160,
    title: str = "",
) -> Image.Image:
    """A grid of pictures with a caption under each: ``images`` ``(K, 3, H, W)``
    in [0, 1] or PIL pictures; ``columns`` defaults to about sqrt(K) (at most 20)."""
    pictures = [to_picture(i) for i in images] if isinstance(images, torch.Tensor) else list(images)
    k = len(pictures)
    columns = columns or max(1, min(20, math.ceil(math.sqrt(k))))
    rows = math.ceil(k / columns) if k else 0
    pad, text_h = 6, 30
    width = columns * (cell + pad) + pad
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_lines = _wrap(title, width - 2 * pad, probe, _font(16)) if title else []
    title_h = 20 * len(title_lines) + (8 if title_lines else 0)
    sheet = Image.new("RGB", (width, title_h + rows * (cell + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(11)
    for n, line in enumerate(title_lines):
        draw.text((pad, 6 + 20 * n), line, fill="black", font=_font(16))
    for n, (picture, caption) in enumerate(zip(pictures, captions)):
        r, c = divmod(n, columns)
        x, y = pad + c * (cell + pad), title_h + pad + r * (cell + text_h + pad)
        sheet.paste(picture.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
        for row, text in enumerate(_wrap(caption, cell, draw, font)[:2]):
            draw.text((x, y + cell + 2 + 13 * row), text, fill="black", font=font)
    return sheet


def _wrap(
    text: str, width: int, draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


def file_stems(targets: Sequence[int], labels: Sequence[str]) -> list[str]:
    """``0812-space-shuttle``-style stems (the ``CLASS`` part of
    :mod:`deepinside.io.names`), distinct within the list."""
    seen: dict[str, int] = {}
    stems = []
    for t, label in zip(targets, labels):
        stem = class_part(t, label)
        n = seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if n == 1 else f"{stem}-{n}")
    return stems


def caption(record: dict[str, object]) -> str:
    """``label  S 12.3  P 97%`` for a class's record (``stopped`` where it
    failed, ``fast preview`` where too few steps were run to judge it, ``not
    converged`` where it did not reach the required probability)."""
    mark = (
        " (stopped)"
        if record.get("stopped")
        else " (fast preview)"
        if record.get("fast_preview")
        else " (not converged)"
        if record.get("converged") is False
        else ""
    )
    return f"{record['label']}  S {record['final_score']:.1f}  P {record['final_probability']:.0%}{mark}"


def save_classes(
    result: ClassModels, out: str | Path, stems: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """Write each class's PNG, its objective log as CSV and then as JSON
    (``STEM.log.json`` last: it marks the class as done) into ``out``.
    Returns each class's record (what ``summary.json`` lists)."""
    stems = list(stems) if stems is not None else file_stems(result.targets.tolist(), result.labels)
    return [save_class(result, k, out, stem) for k, stem in enumerate(stems)]


def save_class(
    result: ClassModels, k: int, out: str | Path, stem: str, extra: dict[str, object] | None = None
) -> dict[str, object]:
    """Write class ``k`` of ``result`` as ``stem`` (see :func:`save_classes`),
    with ``extra`` fields in its record; return the record."""
    out = Path(out)
    rows = result.log.rows(k)
    record = {
        "class_index": int(result.targets[k]),
        "label": result.labels[k],
        "final_score": float(result.final_scores[k]),
        "final_probability": float(result.final_probabilities[k]),
        "steps_run": int(result.log.steps_run[k]),
        "stopped": result.failures.get(k),
        "image": f"{stem}.png",
        **(extra or {}),
    }
    png, csv_log, json_log = class_files(stem)
    write_png(out / png, to_picture(result.images[k]))
    _write_csv(out / csv_log, rows)
    write_json(out / json_log, {**record, "objective": result.log.objective_name, "steps": rows})
    return record


def class_files(stem: str) -> tuple[str, str, str]:
    """A class's file names: picture, CSV log, JSON log (written in that order)."""
    return f"{stem}.png", f"{stem}.log.csv", f"{stem}.log.json"


def read_record(out: str | Path, stem: str) -> dict[str, object] | None:
    """The record of a class saved as ``stem`` in ``out``, or None where it
    is not (completely) there."""
    png, _, json_log = class_files(stem)
    try:
        log = json.loads((Path(out) / json_log).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(log, dict) or not (Path(out) / png).is_file():
        return None
    return {k: v for k, v in log.items() if k not in ("objective", "steps")}


def save_overview(
    out: str | Path,
    records: Sequence[dict[str, object]],
    settings: dict[str, object],
    columns: int | None = None,
) -> list[Path]:
    """``contact_sheet.png`` (from the PNGs in ``out``) and ``summary.json``
    (``settings`` and the records) for the classes of ``records``."""
    out = Path(out)
    pictures = []
    for record in records:
        with Image.open(out / str(record["image"])) as picture:
            pictures.append(picture.convert("RGB"))
    title = f"Class models: {settings.get('preset', '')} preset, {settings.get('model', '')}"
    sheet = contact_sheet(pictures, [caption(r) for r in records], columns, title=title)
    return [
        write_png(out / "contact_sheet.png", sheet),
        write_json(out / "summary.json", {**settings, "classes": list(records)}),
    ]


def save(
    result: ClassModels, out: str | Path, settings: dict[str, object], columns: int | None = None
) -> list[Path]:
    """Write one PNG and an objective log (``.json`` and ``.csv``) per class,
    ``contact_sheet.png`` and ``summary.json`` into ``out``. Returns the paths."""
    out = Path(out)
    stems = file_stems(result.targets.tolist(), result.labels)
    records = save_classes(result, out, stems)
    written = [out / name for stem in stems for name in class_files(stem)]
    overview = {**settings, "objective": result.log.objective_name, "seconds": result.seconds}
    return written + save_overview(out, records, overview, columns)


def _write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(
        text, fieldnames=["step", "size", "score", "probability", "objective"], lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    with atomic_write(path) as handle:
        handle.write(text.getvalue().encode("utf-8"))
    return path


def comparison_figure(
    rows: Sequence[ClassModels], names: Sequence[str], title: str = "", cell: int = 224
) -> Image.Image:
    """Several results for the same classes side by side (one column per
    result, one row per class), e.g. the paper's preset beside the default."""
    first = rows[0]
    pictures = [[to_picture(r.images[k]) for r in rows] for k in range(len(first.labels))]
    caps = [
        f"{first.labels[k]}: "
        + ", ".join(f"{n} P {float(r.final_probabilities[k]):.0%}" for n, r in zip(names, rows))
        for k in range(len(first.labels))
    ]
    return figure(pictures, caps, cell=cell, title=title)


__all__ = [
    "caption",
    "class_files",
    "comparison_figure",
    "contact_sheet",
    "file_stems",
    "read_record",
    "save",
    "save_class",
    "save_classes",
    "save_overview",
    "to_picture",
]
