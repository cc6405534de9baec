"""The same batch run on Ray Data, for a cluster: photos read and decoded by
Ray tasks, the model in a pool of actors (each loads it once), each actor
writing its photos' files to the shared output folder and handing back
their index rows, which the driver writes as shards, as the local engine does.

Resume needs nothing of Ray's: the driver leaves out the photos the index
already holds before building the dataset.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DeepInsideError
from ..io.prefetch import DecodedPhoto, decode_photo
from ..models.classifier import Classifier
from ..models.preprocessing import Placement, Preprocessing
from .index import Row
from .inputs import PhotoEntry
from .settings import BatchSettings
from .stages import explain_batch, failure_row, finish_safely

INSTALL_HINT = "--engine ray needs Ray: pip install 'deepinside[ray]' (or pip install 'ray[data]')"


def require_ray() -> None:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise DeepInsideError(INSTALL_HINT) from None


def run_on_ray(
    model: Classifier,
    todo: Sequence[PhotoEntry],
    out: Path,
    settings: BatchSettings,
    batch_size: int,
    workers: int,
    max_pixels: int,
    *,
    address: str | None = None,
    actors: int = 1,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1,
    threads_per_actor: int | None = None,
) -> Iterator[Row]:
    """Rows of ``todo`` as Ray finishes them. Joins the cluster at ``address``
    (or the one already initialised in this process, or starts one here).
    ``workers`` caps the decoding tasks running at once (0: Ray decides);
    ``gpus_per_actor`` defaults to 1 where the cluster has GPUs."""
    require_ray()
    import ray

    if not todo:
        return
    join_quietly(address, out)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the batch command draws its own
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    items = [{"path": str(e.path), "key": e.key, "true_class": e.true_class, "row": e.row} for e in todo]
    # A function, not a callable class: decoding runs as plain Ray tasks, and
    # asking for half a CPU keeps Ray from fusing it into the model's actors.
    # Blocks of a batch each: a block is a task, and a task per photo costs
    # more in scheduling and object store traffic than decoding the photo.
    blocks = -(-len(items) // batch_size)
    decoded = ray.data.from_items(items, override_num_blocks=blocks).map(
        partial(_decode, max_pixels=max_pixels, preprocessing=model.preprocessing),
        compute=ray.data.TaskPoolStrategy(size=workers) if workers else None,
        num_cpus=0.5,
    )
    with warnings.catch_warnings():
        # Ray calls its actor options "deprecated" and offers no other way to set them yet.
        warnings.filterwarnings("ignore", message=".*deprecated and will be removed in Ray")
        explained = decoded.map_batches(
            _ExplainActor,
            fn_constructor_kwargs={
                "model": model,
                "out": str(out),
                "settings": settings,
                "threads": threads_per_actor or max(1, int(cpus_per_actor)),
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor,
            num_cpus=cpus_per_actor,
            # A failed actor is not restarted (the run resumes from its index
            # instead): Ray then has no restart to warn about on the terminal.
            max_restarts=0,
        )
    for batch in explained.iter_batches(batch_size=None, batch_format="numpy"):
        for text in batch["row"]:
            yield json.loads(str(text))


def join_quietly(address: str | None, out: str | Path) -> None:
    """Join (or start) Ray without its start-up, planning and progress lines
    on the user's terminal: Ray's own logs stay in its session folder, which
    ``out/ray-logs`` points to. Its errors still show."""
    import ray

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Ray Data's advice on concurrency comes as Python warnings.
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _link_logs(Path(out))


def _link_logs(out: Path) -> None:
    """``out/ray-logs``: a link to this Ray session's log folder (on this machine)."""
    try:
        import ray

        # Not every Ray release has get_node_logs_dir.
        node_logs_dir = getattr(ray.get_runtime_context(), "get_node_logs_dir", None)
        logs = Path(node_logs_dir()) if callable(node_logs_dir) else None
    except Exception:  # noqa: BLE001 - a link is a convenience, never a failure
        logs = None
    if logs is None:
        latest = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"
        logs = latest.resolve() if latest.exists() else None
    link = out / "ray-logs"
    if logs is not None and not link.exists():
        with contextlib.suppress(OSError):
            out.mkdir(parents=True, exist_ok=True)
            link.symlink_to(logs, target_is_directory=True)


def _decode(item: dict[str, Any], max_pixels: int, preprocessing: Preprocessing) -> dict[str, Any]:
    """A Ray task's work on one photo: read, decode, preprocess (never raises)."""
    found = decode_photo(item["path"], max_pixels, preprocessing, hash_file=True)
    h, w = preprocessing.input_size
    ok = found.photo is not None and found.input is not None and found.placement is not None
    return {
        **item,
        # A failed photo keeps the columns' shapes: Ray stacks them into batches.
        "photo": np.asarray(found.photo) if ok else np.zeros((1, 1, 3), np.uint8),
        "input": found.input if ok else np.zeros((3, h, w), np.float32),
        "box": np.array(
            found.placement.box if ok and found.placement is not None else (0, 0, 1, 1), np.float64
        ),
        "sha256": found.sha256,
        "bytes": found.size,
        "error": found.error,
        "seconds": found.seconds,
    }


class _ExplainActor:
    """Holds the model (loaded once per actor); explains and writes a batch."""

    def __init__(self, model: Classifier, out: str, settings: BatchSettings, threads: int):
        import torch

        torch.set_num_threads(threads)
        if ray_gpu_ids():
            model = model.to("cuda")
        self.model, self.out, self.settings = model, Path(out), settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:

        pairs = [_unpack(batch, i) for i in range(len(batch["key"]))]
        rows = [failure_row(entry, found) for entry, found in pairs if not found.ok]
        ready = [(entry, found) for entry, found in pairs if found.ok]
        if ready:
            rows += [
                finish_safely(self.out, d, self.settings)
                for d in explain_batch(self.model, ready, self.settings)
            ]
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


def ray_gpu_ids() -> list[Any]:
    import ray

    return list(ray.get_gpu_ids()) if ray.is_initialized() else []


def _unpack(batch: dict[str, np.ndarray], i: int) -> tuple[PhotoEntry, DecodedPhoto]:
    true_class = batch["true_class"][i]
    entry = PhotoEntry(
        Path(str(batch["path"][i])),
        str(batch["key"][i]),
        None if true_class is None or true_class != true_class else str(true_class),
        int(batch["row"][i]),
    )
    found: DecodedPhoto[Placement] = DecodedPhoto(
        str(batch["path"][i]),
        sha256=str(batch["sha256"][i]),
        size=int(batch["bytes"][i]),
        error=str(batch["error"][i]),
        seconds=float(batch["seconds"][i]),
    )
    if found.ok:
        photo = Image.fromarray(np.ascontiguousarray(batch["photo"][i]))
        x0, y0, x1, y1 = (float(v) for v in batch["box"][i])
        found.photo, found.input = photo, np.ascontiguousarray(batch["input"][i])
        found.placement = Placement(photo.size, (x0, y0, x1, y1))
    return entry, found


__all__ = ["INSTALL_HINT", "require_ray", "run_on_ray"]
