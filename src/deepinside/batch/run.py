"""``deepinside.batch.run``: explain every photo of a folder or manifest into
an output folder that a rerun completes (see the package's docstring)."""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import DeepInsideError
from ..io.photos import DEFAULT_MAX_PIXELS
from ..io.prefetch import DecodedPhoto, read_photos
from ..models.classifier import Classifier
from .index import IndexWriter, Row, done_paths, require_pyarrow
from .inputs import PhotoEntry, list_photos
from .settings import BatchSettings, RayOptions, claim_folder
from .stages import explain_batch, failure_row, finish_safely

ENGINES = ("local", "ray")


@dataclass
class BatchSummary:
    """What a run did: ``done`` photos explained now, ``skipped`` already done
    by an earlier run, ``failed`` ``(path, reason)`` of this run's failures."""

    out: Path
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, row: Row) -> None:
        if row["error"]:
            self.failed.append((row["path"], row["error"]))
        else:
            self.done += 1


def run(
    source: str | os.PathLike[str] | Sequence[PhotoEntry],
    out: str | os.PathLike[str],
    model: Classifier,
    settings: BatchSettings | None = None,
    *,
    engine: str = "local",
    batch_size: int = 32,
    workers: int = 2,
    writers: int = 2,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shard_rows: int = 1000,
    progress: bool | None = False,
    ray_options: RayOptions | None = None,
) -> BatchSummary:
    """Explain every photo of ``source`` (a folder, searched recursively; a
    CSV or JSONL manifest; or entries) into ``out``, skipping photos an
    earlier run there finished.

    ``workers`` threads decode photos ahead of the model, which sees
    batches of ``batch_size``; ``writers`` threads write the files meanwhile.
    ``engine="ray"`` runs the same stages on Ray Data (``ray_options``: see
    :func:`deepinside.batch.ray_engine.run_on_ray`). Raises
    :class:`DeepInsideError` for wrong options, a folder of another run, or
    no photos; a photo that cannot be read is a failed row, not an error.

    >>> summary = deepinside.batch.run("photos/", "out/", deepinside.load_model())  # doctest: +SKIP
    >>> rows = deepinside.batch.read_index("out/")  # doctest: +SKIP
    """
    settings = settings or BatchSettings()
    if engine not in ENGINES:
        raise DeepInsideError(f"unknown engine {engine!r}: use local or ray")
    for name, value in (("batch size", batch_size), ("writers", writers), ("shard rows", shard_rows)):
        if value < 1:
            raise DeepInsideError(f"{name} must be at least 1, got {value}")
    if workers < 0:
        raise DeepInsideError(f"workers must be 0 or more, got {workers}")
    if settings.index_format == "parquet":
        require_pyarrow()
    entries = list(source) if not isinstance(source, (str, os.PathLike)) else list_photos(source)
    _check_classes(model, entries, settings)
    start, out = time.perf_counter(), Path(out)
    lock = claim_folder(out, settings.describe(model), overwrite)
    try:
        done = done_paths(out)
        todo = [e for e in entries if e.key not in done]
        summary = BatchSummary(out, total=len(entries), skipped=len(entries) - len(todo))
        writer = IndexWriter(out, settings.index_format, shard_rows)
        with tqdm(
            total=len(todo), unit="photo", desc="batch", file=sys.stderr, disable=_no_bar(progress)
        ) as bar:
            if engine == "ray":
                from .ray_engine import run_on_ray

                options: RayOptions = ray_options or {}
                rows = run_on_ray(model, todo, out, settings, batch_size, workers, max_pixels, **options)
            else:
                rows = _run_here(model, todo, out, settings, batch_size, workers, writers, max_pixels)
            _collect(rows, writer, summary, bar.update)
    finally:
        lock.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _check_classes(model: Classifier, entries: Sequence[PhotoEntry], settings: BatchSettings) -> None:
    """Manifest classes and target classes must name classes of the model."""
    if isinstance(settings.targets, tuple):
        for t in settings.targets:
            if not 0 <= t < len(model.classes):
                raise DeepInsideError(
                    f"target class {t} is not one of the model's 0..{len(model.classes) - 1}"
                )
    k = settings.top_k()
    if k is not None and k > len(model.classes):
        raise DeepInsideError(f"top{k}: the model has {len(model.classes)} classes")
    for e in entries:
        if e.true_class is not None:
            try:
                model.classes.resolve(e.true_class)
            except DeepInsideError as err:
                raise DeepInsideError(f"row {e.row}: {err}") from None


def _collect(
    rows: Iterable[Row], writer: IndexWriter, summary: BatchSummary, tick: Callable[[], object]
) -> None:
    """Rows into the index, as they come. Whatever stops the run (a full
    disk, Ctrl-C), the rows finished by then go into a last shard if they
    can: the photos they describe are not done again."""
    try:
        for row in rows:
            writer.add(row)
            summary.record(row)
            if row["error"]:
                tqdm.write(f"deepinside: failed {row['error']}", file=sys.stderr)
            tick()
    except BaseException:
        try:
            writer.flush()
        except OSError:
            pass  # the shard was not written (atomic): its photos are done again next time
        raise
    writer.flush()


def _run_here(
    model: Classifier,
    todo: Sequence[PhotoEntry],
    out: Path,
    settings: BatchSettings,
    batch_size: int,
    workers: int,
    writers: int,
    max_pixels: int,
) -> Iterator[Row]:
    """The local engine: decoding threads ahead, the model here on full
    batches, writing threads behind; rows in the order they finish."""
    decoded = read_photos(
        (e.path for e in todo),
        max_pixels,
        workers,
        preprocessing=model.preprocessing,
        hash_files=True,
        threads=True,
    )
    pending: deque[cf.Future[Row]] = deque()
    with cf.ThreadPoolExecutor(writers, thread_name_prefix="deepinside-write") as pool:
        try:
            batch: list[tuple[PhotoEntry, DecodedPhoto]] = []
            for entry, found in zip(todo, decoded):
                if not found.ok:
                    pending.append(_ready(failure_row(entry, found)))
                    continue
                batch.append((entry, found))
                if len(batch) == batch_size:
                    pending.extend(_submit(pool, model, batch, out, settings))
                    batch = []
                    # One batch's files are written while the next batch is on the model.
                    while len(pending) > batch_size:
                        yield pending.popleft().result()
            if batch:
                pending.extend(_submit(pool, model, batch, out, settings))
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            decoded.close()  # stops the reading threads now, not when the generator is collected


def _submit(
    pool: cf.Executor,
    model: Classifier,
    batch: list[tuple[PhotoEntry, DecodedPhoto]],
    out: Path,
    settings: BatchSettings,
) -> list[cf.Future[Row]]:
    return [pool.submit(finish_safely, out, done, settings) for done in explain_batch(model, batch, settings)]


def _ready(row: Row) -> cf.Future[Row]:
    future: cf.Future[Row] = cf.Future()
    future.set_result(row)
    return future


__all__ = ["BatchSummary", "run"]
