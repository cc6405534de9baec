"""Many class models as a job that writes each class's files as soon as its
batch is done, so that a run that stops (a crash, Ctrl-C, a machine taken
away) goes on where it stopped when started again with the same settings,
and its batches can run in several worker processes.

The pieces are separate so that any runner is a thin shell:
:meth:`ClassModelJob.start` says which batches are left,
:meth:`ClassModelJob.render` renders one batch and writes its files (any
process that can reach ``out`` may run it), :meth:`ClassModelJob.finish`
writes the contact sheet and ``summary.json`` from the files.
:func:`run_job` runs the batches here or in local worker processes; the
``classmodel`` command is a shell over it.

A class whose picture is not its model's top-1 with the early stop's
probability (P_c >= 0.5 without an early stop, enough to be top-1) has not
converged: it is rendered again from seed + 1, seed + 2, ... up to
``retries`` times (so at most ``(1 + retries) * steps`` steps a class), and
the first picture that converges is kept (else the most probable one).
Each record says ``converged``, the ``seed`` of its picture and the
``attempts`` it took; ``summary.json`` lists the classes ``not_converged``.

A batch's pictures depend on the settings and on the torch threads of the
process that rendered it only up to float round-off; the same settings,
batches and threads per process give the same pictures bit for bit on the
same machine (a resumed run, with fewer batches left, may give its
processes more threads).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import multiprocessing
import re
import signal
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .._core.allocator import keep_freed_memory
from ..errors import DeepInsideError, check_count
from ..io.files import remove_temporary_files, write_json
from ..models.classifier import Classifier
from . import presets
from .api import visualize_class
from .early_stop import EarlyStop
from .objectives import class_objective
from .output import file_stems, read_record, save_class, save_overview
from .param import check_size
from .result import ClassModels

#: What a finished class leaves behind: its ``summary.json`` entry.
Record = dict[str, object]

_SETTINGS_FILE = "run.json"


@dataclass(frozen=True)
class ClassModelJob:
    """Class models of ``targets`` (class indices, each once) into ``out``.

    Every field but ``out``, ``targets`` and ``labels`` decides the pictures
    and is kept in ``out/run.json``: a folder holds the classes of one set
    of settings, so that a resumed run never mixes two. ``model_digest`` is
    the model's :meth:`~deepinside.Classifier.digest` (its weights and input
    normalisation: a model file of the same name with other weights is
    another model).
    """

    out: Path
    targets: tuple[int, ...]
    labels: tuple[str, ...]
    model: str
    model_digest: str = ""
    preset: str = "default"
    objective: str = "logit"
    steps: int = presets.DEFAULT_STEPS
    early_stop: EarlyStop | None = None
    size: tuple[int, int] = (224, 224)
    seed: int = 0
    batch_size: int = 8
    retries: int = 2

    def __post_init__(self) -> None:
        # Checked here, not when the first batch renders: start() claims the folder.
        if self.preset not in presets.PRESETS:
            names = " or ".join(presets.PRESETS)
            raise DeepInsideError(f"unknown preset {self.preset!r}: a job takes {names}")
        class_objective(self.objective)
        check_count("steps", self.steps)
        check_count("batch size", self.batch_size)
        check_size(self.size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise DeepInsideError(f"seed must be a whole number, got {self.seed!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise DeepInsideError(f"retries must be a whole number of at least 0, got {self.retries!r}")

    @classmethod
    def for_model(
        cls,
        model: Classifier,
        targets: Sequence[int],
        out: str | Path,
        *,
        preset: str = "default",
        objective: str = "logit",
        steps: int | None = None,
        early_stop: EarlyStop | bool | float | None = None,
        size: int | None = None,
        seed: int = 0,
        batch_size: int = 8,
        retries: int = 2,
    ) -> ClassModelJob:
        """A job for ``model`` with the preset (by name) and its steps and early
        stop unless told (``early_stop``: see :meth:`Preset.stop_rule`)."""
        if not isinstance(preset, str):
            raise DeepInsideError(
                f"a job takes a preset by name ({' or '.join(presets.PRESETS)}), not {preset!r}: "
                "its name is all run.json can keep"
            )
        recipe = presets.get(preset)
        unique = tuple(dict.fromkeys(int(t) for t in targets))
        return cls(
            out=Path(out),
            targets=unique,
            labels=tuple(model.classes[t].label for t in unique),
            model=model.name,
            model_digest=model.digest(),
            preset=recipe.name,
            objective=objective,
            steps=recipe.steps if steps is None else steps,
            early_stop=recipe.stop_rule(early_stop),
            size=check_size(model.preprocessing.input_size if size is None else size),
            seed=seed,
            batch_size=batch_size,
            retries=retries,
        )

    @property
    def fast_preview(self) -> bool:
        """Fewer steps than the preset's early stop needs before it first
        judges a picture: the pictures are previews, never judged converged
        (a high P_c that early is the paper's fooling image, not a class model)."""
        return self.early_stop is not None and self.steps < self.early_stop.first

    @property
    def required_probability(self) -> float:
        """P_c a class's final picture needs to count as converged."""
        return self.early_stop.probability if self.early_stop else 0.5

    def settings(self) -> dict[str, object]:
        """What decides the pictures, as JSON."""
        return {
            "model": self.model,
            "model_digest": self.model_digest,
            "preset": self.preset,
            "recipe": presets.get(self.preset).description,  # a preset's name outlives its recipe
            "objective": self.objective,
            "steps": self.steps,
            "early_stop": dataclasses.asdict(self.early_stop) if self.early_stop else None,
            "size": list(self.size),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "retries": self.retries,
            "required_probability": self.required_probability,
        }

    def stems(self) -> dict[int, str]:
        """File stem of each target."""
        return dict(zip(self.targets, file_stems(self.targets, self.labels)))

    def start(self, overwrite: bool = False) -> list[list[int]]:
        """Claim ``out`` for these settings (refusing a folder that holds
        another run's, or with ``overwrite`` deleting that run's files first)
        and return the batches of classes not yet done."""
        settings_file = self.out / _SETTINGS_FILE
        if settings_file.is_file():
            try:
                there = json.loads(settings_file.read_text(encoding="utf-8"))
            except ValueError:
                there = None
            if there != self.settings() and overwrite:
                _remove_run(self.out)
                write_json(settings_file, self.settings())
            elif there != self.settings():
                base = self.out if self.out.name else self.out.resolve()  # "." has no name to vary
                other = base.with_name(f"{base.name}-{self.preset}-{self.steps}-seed{self.seed}")
                raise DeepInsideError(
                    f"{self.out} holds class models made with other settings "
                    f"({_difference(there, self.settings())}): "
                    f"use another folder (e.g. --out {other}), or --overwrite to delete its results"
                )
        else:
            write_json(settings_file, self.settings())
        remove_temporary_files(self.out)  # of writes cut short when a run was killed (not fresh ones)
        stems = self.stems()
        todo = [t for t in self.targets if read_record(self.out, stems[t]) is None]
        return [todo[i : i + self.batch_size] for i in range(0, len(todo), self.batch_size)]

    def render(self, model: Classifier, batch: Sequence[int], progress: bool | None = False) -> list[Record]:
        """Render one batch with ``model``, again from other seeds for the
        classes that did not converge (see the module's help), and write its
        classes' files. A class that failed says why in its record's
        ``stopped`` (no warning)."""
        first = self._visualize(model, batch, self.seed, progress)
        kept = {t: _Attempt(first, k, self.seed) for k, t in enumerate(batch)}
        tries = dict.fromkeys(batch, 1)
        for retry in range(1, 0 if self.fast_preview else self.retries + 1):
            left = [t for t in batch if not kept[t].converged(self.required_probability)]
            if not left:
                break
            again = self._visualize(model, left, self.seed + retry, progress)
            for k, t in enumerate(left):
                tries[t] += 1
                kept[t] = _better(kept[t], _Attempt(again, k, self.seed + retry), self.required_probability)
        stems = self.stems()
        return [
            save_class(
                kept[t].result,
                kept[t].k,
                self.out,
                stems[t],
                {
                    "converged": not self.fast_preview and kept[t].converged(self.required_probability),
                    **({"fast_preview": True} if self.fast_preview else {}),
                    "seed": kept[t].seed,
                    "attempts": tries[t],
                },
            )
            for t in batch
        ]

    def _visualize(
        self, model: Classifier, classes: Sequence[int], seed: int, progress: bool | None
    ) -> ClassModels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return visualize_class(
                model,
                list(classes),
                preset=self.preset,
                objective=self.objective,
                steps=self.steps,
                early_stop=self.early_stop or False,
                size=self.size,
                seed=seed,
                batch_size=self.batch_size,
                progress=progress,
            )

    def finish(self, columns: int | None = None, **extra: object) -> list[Record]:
        """Write ``contact_sheet.png`` and ``summary.json`` (the settings,
        ``extra`` and every class's record); return the records."""
        stems = self.stems()
        records = [read_record(self.out, stems[t]) for t in self.targets]
        missing = [self.labels[i] for i, r in enumerate(records) if r is None]
        if missing:
            raise DeepInsideError(
                f"{len(missing)} classes are not done yet (first: {missing[0]}): run the job again"
            )
        done = [r for r in records if r is not None]
        summary = {
            **self.settings(),
            **extra,
            "fast_preview": self.fast_preview,
            "not_converged": not_converged(done),
        }
        save_overview(self.out, done, summary, columns)
        return done


def not_converged(records: Sequence[Record]) -> list[str]:
    """Labels of the classes whose picture did not converge (or failed); a
    fast preview's pictures are not judged."""
    return [
        str(r["label"])
        for r in records
        if (r.get("converged") is False and not r.get("fast_preview")) or r.get("stopped")
    ]


@dataclass(frozen=True)
class _Attempt:
    """Class ``k`` of one run's ``result``, rendered from ``seed``."""

    result: ClassModels
    k: int
    seed: int

    def converged(self, required: float) -> bool:
        return self.k not in self.result.failures and self.probability >= required

    @property
    def probability(self) -> float:
        return float(self.result.final_probabilities[self.k])


def _better(kept: _Attempt, new: _Attempt, required: float) -> _Attempt:
    """The converged one (the earlier if both), else the more probable."""
    if kept.converged(required) or new.k in new.result.failures:
        return kept
    if new.converged(required) or kept.k in kept.result.failures:
        return new
    return new if new.probability > kept.probability else kept


#: The files a class-model run writes in its folder (and ``--overwrite`` removes).
_RUN_FILE = re.compile(r"^\d{4}-.+\.(png|log\.json|log\.csv)$")


def _remove_run(out: Path) -> None:
    """Delete a run's files from ``out``: its classes' pictures and logs, the
    contact sheet, the summary and its settings; nothing else there."""
    for path in out.iterdir():
        if path.is_file() and (
            _RUN_FILE.match(path.name) or path.name in ("contact_sheet.png", "summary.json", _SETTINGS_FILE)
        ):
            path.unlink()


def _difference(there: object, here: dict[str, object]) -> str:
    if not isinstance(there, dict):
        return "unreadable run.json"
    changed = [f"{k} {there.get(k)!r} there, {v!r} now" for k, v in here.items() if there.get(k) != v]
    return "; ".join(changed) or "unknown fields"


def run_job(
    job: ClassModelJob,
    model: Classifier,
    *,
    batches: Sequence[Sequence[int]] | None = None,
    workers: int = 1,
    model_factory: Callable[[], Classifier] | None = None,
    on_batch: Callable[[list[Record]], None] | None = None,
    progress: bool | None = False,
) -> int:
    """Render ``batches`` (default: every batch of ``job`` not yet done, from
    :meth:`ClassModelJob.start`); return how many classes were rendered.
    With ``workers`` > 1 and more than one batch left, the batches go to
    that many processes, each building its own model with ``model_factory``
    (picklable, e.g. a module-level function) and using an equal share of
    this process's torch threads. ``on_batch`` is called
    with each finished batch's records; ``progress`` shows a per-step bar
    when the batches run here."""
    batches = job.start() if batches is None else batches
    workers = min(workers, len(batches))
    if workers <= 1:
        for batch in batches:
            records = job.render(model, batch, progress=progress)
            if on_batch:
                on_batch(records)
        return sum(map(len, batches))
    if model_factory is None:
        raise DeepInsideError("worker processes need a model_factory to build their own model")
    threads = max(1, torch.get_num_threads() // workers)
    pool = cf.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(model_factory, threads),
    )
    try:
        futures = [pool.submit(_render_in_worker, job, batch) for batch in batches]
        for future in cf.as_completed(futures):
            records = future.result()
            if on_batch:
                on_batch(records)
    except cf.process.BrokenProcessPool:
        raise DeepInsideError(
            "a worker process died (out of memory?); the classes done so far are kept: run the same command "
            "again to go on, with --workers 1 to use less memory"
        ) from None
    except BaseException:  # Ctrl-C or a batch that failed: stop the others now, not after their batch
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sum(map(len, batches))


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    """Kill the workers: what they finished is on disk, and the temporary
    file of a write they were in is removed by a later start, once it is
    old enough not to be another process's write in progress."""
    # ProcessPoolExecutor.terminate_workers() arrives in Python 3.14.
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    for process in list(processes.values()):
        process.join()


_worker_model: Classifier | None = None


def _start_worker(model_factory: Callable[[], Classifier], threads: int) -> None:
    global _worker_model
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    # tqdm's default lock is a named semaphore, which a killed worker would leak.
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    keep_freed_memory()
    _worker_model = model_factory()


def _render_in_worker(job: ClassModelJob, batch: Sequence[int]) -> list[Record]:
    assert _worker_model is not None
    return job.render(_worker_model, batch)


__all__ = ["ClassModelJob", "Record", "not_converged", "run_job"]
