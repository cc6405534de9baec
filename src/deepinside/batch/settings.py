"""What decides a batch run's results, and the output folder that keeps them.

A folder holds the results of one set of settings and one model: its
``run.json`` records both, and a later run with other settings is refused
(naming the difference) unless told to start the folder again, so that a
resumed run never mixes two.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypedDict

from ..attribution import Method
from ..attribution.methods import Reduction, flag_of, method_from_name, options_of
from ..errors import DeepInsideError
from ..io.files import TEMPORARY_SUFFIX, write_json
from ..localization import config_named
from ..models.classifier import Classifier


class RayOptions(TypedDict, total=False):
    """Where and how a batch runs on Ray: the keywords of
    :func:`deepinside.batch.ray_engine.run_on_ray`, each optional."""

    address: str | None
    actors: int
    gpus_per_actor: float | None
    cpus_per_actor: float
    threads_per_actor: int | None


SETTINGS_FILE = "run.json"
LOCK_FILE = ".lock"
#: What a run writes in its folder (and --overwrite removes).
OUTPUTS = ("index", "maps", "pictures", SETTINGS_FILE)
INDEX_FORMATS = ("parquet", "jsonl")


@dataclass(frozen=True)
class BatchSettings:
    """Everything that decides what a batch run writes.

    Args:
        methods: attribution methods (names or instances with their options).
        targets: ``"top1"``, ``"top5"`` (any ``"topK"``), or class indices
            explained for every photo.
        reduce: channel reduction of every map.
        localize: a localisation config name (``default``, ``paper``, ...) to add
            boxes, or None.
        float16: store maps as float16 (half the disk; stats are computed on
            float32 first).
        compress: deflate the maps' ``.npz`` (zlib: smaller files for smooth
            maps and float16, more CPU per photo).
        pictures: also write PNG overlays of each map on its photo.
        index_format: ``parquet`` (needs pyarrow) or ``jsonl``.
    """

    methods: tuple[Method, ...] = field(default_factory=lambda: (method_from_name("gradient"),))
    targets: str | tuple[int, ...] = "top1"
    reduce: Reduction = "max-abs"
    localize: str | None = None
    float16: bool = False
    compress: bool = False
    pictures: bool = False
    index_format: str = "parquet"

    def __post_init__(self) -> None:
        methods = tuple(method_from_name(m) for m in self.methods)
        if not methods:
            raise DeepInsideError("give at least one method")
        if len({m.name for m in methods}) != len(methods):
            raise DeepInsideError("each method may be given once")
        object.__setattr__(self, "methods", methods)
        if isinstance(self.targets, str):
            top_k(self.targets)
        else:
            object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))
        if self.localize is not None:
            config_named(self.localize)
        if self.index_format not in INDEX_FORMATS:
            raise DeepInsideError(f"unknown index format {self.index_format!r}: use parquet or jsonl")

    def top_k(self) -> int | None:
        """K for ``"topK"`` targets, None for a fixed list of classes."""
        return top_k(self.targets) if isinstance(self.targets, str) else None

    def describe(self, model: Classifier) -> dict[str, object]:
        """The settings with the model, as ``run.json`` keeps them."""
        return {
            "model": model.name,
            "model_digest": model.digest(),
            "input_size": list(model.preprocessing.input_size),
            "resize": model.preprocessing.resize,
            "methods": [{"name": m.name, **_options(m)} for m in self.methods],
            "targets": self.targets if isinstance(self.targets, str) else list(self.targets),
            "reduce": self.reduce,
            "localize": self.localize,
            "float16": self.float16,
            "compress": self.compress,
            "pictures": self.pictures,
            "index_format": self.index_format,
        }


def top_k(targets: str) -> int:
    found = re.fullmatch(r"top(\d+)", targets)
    if not found or int(found.group(1)) < 1:
        raise DeepInsideError(f"targets {targets!r}: use top1, top5 (any topK) or a list of classes")
    return int(found.group(1))


def _options(method: Method) -> dict[str, object]:
    return {
        k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
        for k, v in dataclasses.asdict(method).items()
    }


def claim_folder(out: Path, settings: dict[str, object], overwrite: bool = False) -> IO[str]:
    """Lock ``out`` for this run and make it hold ``settings``: a folder of
    another run is refused (naming the difference), or with ``overwrite``
    emptied of that run's outputs first. Returns the lock, held until closed
    (a killed process lets it go)."""
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / LOCK_FILE, "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DeepInsideError(
            f"{out}: another batch run is writing there now; wait for it or use another --out"
        ) from None
    there = _read_settings(out / SETTINGS_FILE)
    if there is not None and there != settings:
        if not overwrite:
            lock.close()
            raise DeepInsideError(
                f"{out} holds a run with other settings ({difference(there, settings)}): "
                "use another --out, or --overwrite to delete its results and start again"
            )
        for name in OUTPUTS:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if there != settings:
        write_json(out / SETTINGS_FILE, settings)
    remove_partial_files(out)
    return lock


def _read_settings(path: Path) -> object:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return "unreadable"


#: How the command line names each setting of ``run.json``.
_FLAGS = {
    "model": "--model",
    "model_digest": "the model's weights",
    "input_size": "--input-size",
    "resize": "--resize",
    "methods": "--methods",
    "targets": "--targets",
    "reduce": "--reduce",
    "localize": "--localize",
    "float16": "--float16",
    "compress": "--compress",
    "pictures": "--pictures",
    "index_format": "--index",
}


def difference(there: object, here: dict[str, object]) -> str:
    """What differs between two runs' settings, in the command line's words:
    ``--methods gradient there, gradient grad-cam now``."""
    if not isinstance(there, dict):
        return f"its {SETTINGS_FILE} is unreadable"
    changed = [
        f"{_FLAGS.get(k, k)} {_in_words(k, there.get(k))} there, {_in_words(k, v)} now"
        for k, v in here.items()
        if there.get(k) != v
    ]
    return "; ".join(changed) or "unknown fields"


def _in_words(key: str, value: object) -> str:
    if key == "methods" and isinstance(value, list):
        return " ".join(_method_in_words(m) for m in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _method_in_words(recorded: object) -> str:
    """A recorded method as its name and the flags of options off their defaults."""
    if not isinstance(recorded, dict) or "name" not in recorded:
        return str(recorded)
    name = str(recorded["name"])
    try:
        declared = options_of(method_from_name(name))
    except DeepInsideError:
        return name
    flags = [
        f"{flag} {recorded[field]}"
        for field, (default, option) in declared.items()
        if (flag := flag_of(field, option)) and field in recorded and recorded[field] != default
    ]
    return " ".join([name, *flags])


def remove_partial_files(out: Path) -> int:
    """Delete the temporary files of writes that a killed run cut short (the
    folder is locked: no other run is writing them)."""
    removed = 0
    for name in ("index", "maps", "pictures"):
        for folder, _, files in os.walk(out / name):
            for f in files:
                if f.startswith(".") and f.endswith(TEMPORARY_SUFFIX):
                    Path(folder, f).unlink(missing_ok=True)
                    removed += 1
    return removed


__all__ = ["BatchSettings", "claim_folder", "difference"]
