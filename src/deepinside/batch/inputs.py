"""What a batch run reads: every photo under a folder, or the rows of a
manifest (CSV or JSONL of paths, each with an optional class)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeepInsideError
from ..io.photos import IMAGE_SUFFIXES

MANIFEST_SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True)
class PhotoEntry:
    """One photo to explain. ``key`` names it in the index and in the output
    folder: its path relative to the folder searched, or as the manifest
    writes it (relative to the manifest)."""

    path: Path
    key: str
    true_class: str | None = None  # as the manifest gives it, when it does
    row: int = 0  # the manifest's row number (0: found in a folder)


def list_photos(source: str | os.PathLike[str]) -> list[PhotoEntry]:
    """The photos of a folder (recursive, image suffixes only, sorted; hidden
    files and folders left out) or of a manifest file, each once."""
    source = Path(source)
    if source.is_dir():
        entries = _folder(source)
        if not entries:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DeepInsideError(
                f"{source}: no photos found in this folder or below it (looked for {suffixes})"
            )
        return entries
    if not source.exists():
        raise DeepInsideError(f"{source}: no such folder or manifest")
    if source.suffix.lower() not in MANIFEST_SUFFIXES:
        raise DeepInsideError(
            f"{source}: give a folder of photos or a manifest (.csv with a 'path' column, or .jsonl)"
        )
    entries = _manifest(source)
    if not entries:
        raise DeepInsideError(f"{source}: the manifest lists no photos")
    return entries


def _folder(root: Path) -> list[PhotoEntry]:
    files = sorted(
        f
        for f in root.rglob("*")
        if f.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in f.relative_to(root).parts)
        and f.is_file()
    )
    return [PhotoEntry(f, f.relative_to(root).as_posix()) for f in files]


def _manifest(manifest: Path) -> list[PhotoEntry]:
    rows = _csv_rows(manifest) if manifest.suffix.lower() == ".csv" else _jsonl_rows(manifest)
    base = manifest.parent
    entries: dict[str, PhotoEntry] = {}  # a path listed twice is one photo
    missing: list[str] = []
    for row_number, written, true_class in rows:
        path = base / written
        if not path.is_file():
            missing.append(f"row {row_number}: {written}")
            continue
        entries.setdefault(written, PhotoEntry(path, written, true_class, row_number))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        relative = any(not Path(m.split(": ", 1)[1]).is_absolute() for m in missing)
        hint = "; paths are relative to the manifest's folder" if relative else ""
        raise DeepInsideError(f"{manifest}: {missing[0]}: no such file{more}{hint}")
    return list(entries.values())


def _csv_rows(manifest: Path) -> Iterator[tuple[int, str, str | None]]:
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if "path" not in header:
            raise DeepInsideError(
                f"{manifest}: row 1 must be a header naming a 'path' column (and optionally 'class')"
            )
        path_at = header.index("path")
        class_at = header.index("class") if "class" in header else None
        for row in reader:
            row_number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DeepInsideError(
                    f"{manifest}: row {row_number} has {len(row)} fields, the header {len(header)}"
                )
            written = row[path_at].strip()
            if not written:
                raise DeepInsideError(f"{manifest}: row {row_number} has an empty path")
            true_class = row[class_at].strip() or None if class_at is not None else None
            yield row_number, written, true_class


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, str, str | None]]:
    with manifest.open(encoding="utf-8") as handle:
        for row_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:  # a JSONDecodeError, or a number too long for Python's int
                reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
                raise DeepInsideError(f"{manifest}: row {row_number} is not JSON ({reason})") from None
            written = row.get("path") if isinstance(row, dict) else None
            if not isinstance(written, str) or not written.strip():
                raise DeepInsideError(
                    f'{manifest}: row {row_number} needs a "path" string, '
                    """e.g. {"path": "cat.jpg", "class": "tabby"}"""
                )
            true_class = row.get("class")
            yield row_number, written.strip(), None if true_class is None else str(true_class)


__all__ = ["MANIFEST_SUFFIXES", "PhotoEntry", "list_photos"]
