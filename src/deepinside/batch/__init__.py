"""Whole datasets: every photo of a folder or manifest explained into an
output folder, streaming, resumable, on one machine or a Ray cluster.

The output folder holds ``run.json`` (the settings and the model's digest),
``maps/`` (one ``.npz`` per photo, the input's path mirrored), ``pictures/``
(PNG overlays, when asked for) and ``index/`` (one row per photo, in shards).
Every file is written atomically; a photo is done once its row is in a
shard, so a run that is killed and started again does each photo once.

>>> summary = deepinside.batch.run("photos/", "out/", deepinside.load_model())  # doctest: +SKIP
"""

from .index import COLUMNS, read_index, shard_paths
from .inputs import PhotoEntry, list_photos
from .run import ENGINES, BatchSummary, run
from .settings import BatchSettings, RayOptions

__all__ = [
    "COLUMNS",
    "ENGINES",
    "BatchSettings",
    "BatchSummary",
    "PhotoEntry",
    "RayOptions",
    "list_photos",
    "read_index",
    "run",
    "shard_paths",
]
