"""The "Visualise a class" tab's work: :func:`~deepinside.visualize_class`
in a worker thread, its steps streamed to the page, stoppable.

The render loop calls back after each step; the callback hands the step to
the page through a queue, and raises :class:`Stopped` once the user asked to
stop, which ends the render where it stands and frees the worker.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..errors import DeepInsideError
from ..io.files import write_json, write_png
from ..visualization import ClassModels, StepReport, presets, visualize_class
from ..visualization.output import save, to_picture
from .session import Server

#: How often intermediate pictures are sent to the page, at most.
PICTURE_INTERVAL_S = 0.5


class Stopped(Exception):
    """Raised inside the render loop to end a job the user stopped."""


@dataclass(frozen=True)
class ClassJob:
    targets: tuple[int, ...]
    preset: str
    seed: int
    steps: int
    size: int


def check_job(
    server: Server, targets: Sequence[int], preset: str, seed: float, steps: float, size: float
) -> ClassJob:
    """A job within the server's limits, or a :class:`DeepInsideError` saying which limit."""
    limits = server.limits
    if preset not in presets.PRESETS:
        raise DeepInsideError(f"unknown preset {preset!r}: use one of {', '.join(sorted(presets.PRESETS))}")
    if not 1 <= len(targets) <= limits.max_classes:
        raise DeepInsideError(f"choose 1 to {limits.max_classes} classes per job, got {len(targets)}")
    for what, value, low, high in (
        ("steps", steps, 1, limits.max_steps),
        ("size", size, 16, limits.max_size),
    ):
        if value is None or not math.isfinite(value) or value != int(value) or not low <= value <= high:
            raise DeepInsideError(
                f"{what} must be a whole number from {low} to {high} on this server, got {value}"
            )
    if seed is None or not math.isfinite(seed) or seed != int(seed) or not 0 <= seed < 2**31:
        raise DeepInsideError(f"seed must be a whole number from 0 to {2**31 - 1}, got {seed}")
    return ClassJob(tuple(targets), preset, int(seed), int(steps), int(size))


@dataclass
class JobView:
    """What the page shows of a job: where it is, the pictures so far, the files at the end."""

    status: str
    pictures: list[tuple[Image.Image, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    finished: bool = False


class ClassJobs:
    """The running jobs, one per browser session, each with its stop flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}

    def stop(self, session: str) -> bool:
        """Ask the session's job to stop; False when it has none running."""
        with self._lock:
            flag = self._stops.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def run(self, server: Server, session: str, job: ClassJob) -> Iterator[JobView]:
        """Run ``job`` and yield the page's view of it as it goes."""
        flag = threading.Event()
        with self._lock:
            if session in self._stops:
                raise DeepInsideError("a class visualisation of yours is already running: stop it or wait")
            self._stops[session] = flag
        try:
            yield from _stream(server, job, flag)
        finally:
            flag.set()  # the page went away or the job ended: the worker must not go on
            with self._lock:
                self._stops.pop(session, None)


def _stream(server: Server, job: ClassJob, flag: threading.Event) -> Iterator[JobView]:
    labels = [server.model.classes[t].label for t in job.targets]
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    worker = threading.Thread(target=_render, args=(server, job, flag, events), daemon=True)
    worker.start()
    shown: list[tuple[Image.Image, str]] = []
    last: StepReport | None = None
    yield JobView(f"starting: {', '.join(labels)}")
    while True:
        # Whatever piled up while the page was being updated: only the latest step is shown.
        batch = [events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        steps = [payload for kind, payload in batch if kind == "step"]
        for report, pixels in steps:  # type: ignore[misc]
            last = report
            if pixels is not None:
                shown = _captioned(pixels, labels, report.first)
        ended = [(kind, payload) for kind, payload in batch if kind != "step"]
        if not ended:
            assert last is not None
            yield JobView(step_status(last, labels), shown)
            continue
        kind, payload = ended[0]
        if kind == "done":
            yield _finished(server, job, payload, labels)  # type: ignore[arg-type]
            return
        elif kind == "stopped":
            files = _save_partial(server, job, shown, last) if shown else []
            where = f" at step {last.step} of {last.steps}" if last else ""
            yield JobView(f"stopped{where}", shown, files, finished=True)
            return
        else:
            raise DeepInsideError(str(payload))


def _finished(server: Server, job: ClassJob, result: ClassModels, labels: Sequence[str]) -> JobView:
    """The finished pictures, and the command line's files for them (PNGs, logs, contact sheet, summary)."""
    settings = {"preset": job.preset, "seed": job.seed, "steps": job.steps, "model": server.model.name}
    written = save(result, server.result_folder(), settings)
    probabilities = ", ".join(
        f"{label} P_c {float(p):.0%}" for label, p in zip(labels, result.final_probabilities)
    )
    steps_run = int(result.log.steps_run.max())
    rule = presets.get(job.preset).stop_rule()
    preview = (
        f" (a fast preview: the {job.preset} preset first judges a picture at step {rule.first})"
        if rule is not None and job.steps < rule.first
        else ""
    )
    return JobView(
        f"done in {result.seconds:.1f} s, {steps_run} steps: {probabilities}{preview}",
        _captioned(result.images.cpu(), labels, 0),
        [str(p) for p in written],
        finished=True,
    )


def _render(server: Server, job: ClassJob, flag: threading.Event, events: queue.Queue) -> None:  # type: ignore[type-arg]
    sent = [0.0]

    def on_step(report: StepReport) -> None:
        if flag.is_set():
            raise Stopped
        now = time.monotonic()
        due = report.step in (1, report.steps) or now - sent[0] >= PICTURE_INTERVAL_S
        pixels = report.pictures().detach().cpu() if due else None
        if due:
            sent[0] = now
        events.put(("step", (report, pixels)))

    try:
        result = visualize_class(
            server.model,
            list(job.targets),
            preset=job.preset,
            steps=job.steps,
            size=job.size,
            seed=job.seed,
            batch_size=len(job.targets),
            on_step=on_step,
        )
    except Stopped:
        events.put(("stopped", None))
    except DeepInsideError as err:
        events.put(("error", str(err)))
    except Exception as err:  # noqa: BLE001 - the page must hear of it rather than wait forever
        events.put(("error", f"the class visualisation failed: {type(err).__name__}: {err}"))
        raise
    else:
        events.put(("done", result))


def step_status(report: StepReport, labels: Sequence[str]) -> str:
    """``step 12/50 · tabby S_c 8.1 P_c 42%``, one part per class of the batch."""
    parts = []
    for k, (s, p) in enumerate(zip(report.scores.tolist(), report.probabilities.tolist())):
        label = labels[report.first + k]
        parts.append(f"{label} done" if math.isnan(s) else f"{label} S_c {s:.2f} P_c {p:.0%}")
    return f"step {report.step}/{report.steps} · " + " · ".join(parts)


def _captioned(pixels: torch.Tensor, labels: Sequence[str], first: int) -> list[tuple[Image.Image, str]]:
    return [(to_picture(p), labels[first + k]) for k, p in enumerate(pixels)]


def _save_partial(
    server: Server, job: ClassJob, shown: list[tuple[Image.Image, str]], last: StepReport | None
) -> list[str]:
    """The pictures as they were when the job stopped, and where it stopped."""
    folder: Path = server.result_folder()
    files = [
        str(write_png(folder / f"{job.targets[k]:04d}-stopped.png", p)) for k, (p, _) in enumerate(shown)
    ]
    record = {
        "classes": list(job.targets),
        "preset": job.preset,
        "seed": job.seed,
        "stopped_at_step": last.step if last else 0,
        "steps": job.steps,
    }
    return files + [str(write_json(folder / "stopped.json", record))]
