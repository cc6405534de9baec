"""The "Visualise a class" tab's work: :func:`~deepinside.visualize_class`
in a worker thread, its steps streamed to the page, stoppable.

The render loop calls back after each step; the callback hands the step to
the page through a queue, and raises :class:`Stopped` once the user asked to
stop, which ends the render where it stands and frees the worker.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..errors import DeepInsideError
from ..models.classifier import Classifier
from ..visualization import ClassModels, ObjectiveLog, StepReport, presets, visualize_class
from ..visualization.output import save, to_picture
from ..visualization.schedule import octave_sizes
from .session import Server
from .shown import PictureFiles

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
    """What the page shows of a job: where it is, the pictures (files, with
    their captions; None: as they were), the files at the end."""

    status: str
    pictures: list[tuple[str, str]] | None = None
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


#: What the worker tells the page: a step (with its pictures when due), the
#: stop (with the pictures where it stopped), the result, or an error.
_Event = (
    tuple[Literal["step", "stopped"], StepReport, torch.Tensor | None]
    | tuple[Literal["done"], ClassModels]
    | tuple[Literal["error"], str]
)


def _stream(server: Server, job: ClassJob, flag: threading.Event) -> Iterator[JobView]:
    labels = [server.model.classes[t].label for t in job.targets]
    events: queue.Queue[_Event] = queue.Queue()
    worker = threading.Thread(target=_render, args=(server, job, flag, events), daemon=True)
    worker.start()
    shown = PictureFiles(server.result_folder())
    reports: list[StepReport] = []
    yield JobView(f"starting: {', '.join(labels)}", [])  # the last run's pictures go
    while True:
        # Whatever piled up while the page was being updated: only the latest pictures are shown.
        batch = [events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        pictures = None
        for event in batch:
            if event[0] == "step" or event[0] == "stopped":
                reports.append(event[1])
                if event[2] is not None:
                    pictures = (event[1].step, event[2])
        ended = batch[-1]
        if ended[0] == "step":
            yield JobView(
                step_status(reports[-1], labels), _snapshot(shown, pictures, labels) if pictures else None
            )
        elif ended[0] == "done":
            yield _finished(server, job, ended[1], labels)
            return
        elif ended[0] == "stopped":
            yield _stopped(server, job, labels, reports, ended[2])
            return
        else:
            raise DeepInsideError(ended[1])


def _snapshot(
    shown: PictureFiles, pictures: tuple[int, torch.Tensor], labels: Sequence[str]
) -> list[tuple[str, str]]:
    """The pictures at a step as files of their own (the page may still be
    fetching the earlier ones)."""
    step, pixels = pictures
    return [(shown.new(f"{label}-step-{step}", to_picture(p)), label) for p, label in zip(pixels, labels)]


def _finished(server: Server, job: ClassJob, result: ClassModels, labels: Sequence[str]) -> JobView:
    """The finished pictures, and the command line's files for them (PNGs, logs, contact sheet, summary)."""
    written = save(result, server.result_folder(), _settings(server, job))
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
        _saved_pictures(written, labels),
        [str(p) for p in written],
        finished=True,
    )


def _settings(server: Server, job: ClassJob) -> dict[str, object]:
    return {"preset": job.preset, "seed": job.seed, "steps": job.steps, "model": server.model.name}


def _saved_pictures(written: Sequence[Path], labels: Sequence[str]) -> list[tuple[str, str]]:
    """The class pictures among the files :func:`save` wrote, with their captions
    (written once, atomically: the page may show them as they are)."""
    pngs = [str(p) for p in written if p.suffix == ".png" and p.name != "contact_sheet.png"]
    return list(zip(pngs, labels))


def _stopped(
    server: Server,
    job: ClassJob,
    labels: Sequence[str],
    reports: Sequence[StepReport],
    pixels: torch.Tensor | None,
) -> JobView:
    """A stopped job's files, named and laid out as a finished one's: each
    class's picture as far as it got, its log, the contact sheet and the
    summary, which says where the run stopped."""
    if not reports or pixels is None:
        return JobView("stopped before the first step", [], [], finished=True)
    last = reports[-1]
    result = partial_result(server.model, job, labels, reports, pixels)
    settings = {**_settings(server, job), "stopped_at_step": last.step}
    written = save(result, server.result_folder(), settings)
    return JobView(
        f"stopped at step {last.step} of {last.steps}",
        _saved_pictures(written, labels),
        [str(p) for p in written],
        finished=True,
    )


def partial_result(
    model: Classifier,
    job: ClassJob,
    labels: Sequence[str],
    reports: Sequence[StepReport],
    pixels: torch.Tensor,
) -> ClassModels:
    """What a stopped run got to, as the result of a finished one: the
    pictures ``(K, 3, H, W)`` at the last step, S_c and P_c of each step
    reported (the objective is not reported: left empty), the final S_c and
    P_c of the pictures as they are, and each class marked as stopped."""
    recipe = dataclasses.replace(presets.get(job.preset), steps=job.steps)
    sizes = octave_sizes(
        recipe.octaves,
        (job.size, job.size),
        job.steps,
        recipe.interleave,
        recipe.late_octaves,
        recipe.late_from,
    )
    scores = torch.full((len(job.targets), job.steps), math.nan, dtype=torch.float64)
    probabilities = scores.clone()
    for report in reports:
        scores[:, report.step - 1] = report.scores.double()
        probabilities[:, report.step - 1] = report.probabilities.double()
    targets = torch.tensor(job.targets, dtype=torch.long)
    with torch.no_grad():
        device = next(model.parameters()).device
        final = model.scores(model.preprocessing.normalize(pixels.to(device))).double().cpu()
    last = reports[-1].step
    return ClassModels(
        images=pixels,
        log=ObjectiveLog(
            scores,
            probabilities,
            torch.full_like(scores, math.nan),
            sizes,
            recipe.objective("logit").name,
            (~scores.isnan()).sum(1),
        ),
        targets=targets,
        labels=list(labels),
        final_scores=final.gather(1, targets[:, None])[:, 0],
        final_probabilities=final.softmax(1).gather(1, targets[:, None])[:, 0],
        failures={k: f"stopped by the user at step {last}" for k in range(len(job.targets))},
    )


def _render(server: Server, job: ClassJob, flag: threading.Event, events: queue.Queue[_Event]) -> None:
    sent = [0.0]

    def on_step(report: StepReport) -> None:
        if flag.is_set():
            # This step is done: its pictures are where the run stopped.
            events.put(("stopped", report, report.pictures().detach().cpu()))
            raise Stopped
        now = time.monotonic()
        due = report.step in (1, report.steps) or now - sent[0] >= PICTURE_INTERVAL_S
        pixels = report.pictures().detach().cpu() if due else None
        if due:
            sent[0] = now
        events.put(("step", report, pixels))

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
        pass
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
