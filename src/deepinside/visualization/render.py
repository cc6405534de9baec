"""The render loop: gradient ascent on images, many classes as one batch.

Classes are optimised together, ``batch_size`` at a time. Each image has its
own random generator, seeded from ``seed`` and its class, and the draws
common to a step's images (``transforms.random_apply``) come from one stream
seeded from ``seed`` alone, the same for every batch, so a class's
picture does not depend on which classes share its batch (up to float
round-off: the network's passes take the classes still running), and the
same seed gives the same pictures bit for bit on the same machine, torch
threads and batches, on the CPU, and on CUDA for models whose own backward
adds in a fixed order, as the built-in ones do (there the resampling adds
its gradient in a fixed order and cuDNN is left out: :mod:`.resampling`).
Gradients come from the gradient engine's private, eval-mode copy of the
model (batch norm folded, padding inside the convolutions, channels-last):
the caller's model is never changed.

A step, for one batch (:class:`_Batch`): make the views of the running
images and score them (:func:`_views_and_scores`), log S_c and P_c
(:func:`_log_step`), take the gradient, freeze the rows whose objective or
gradient stopped being finite (:func:`_drop_non_finite`), update the
parameters (:func:`_update`), and stop the classes that are recognised
(:func:`_stop_recognised`); at the end, score the returned pictures
(:func:`_finish`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from .._core.gradients import repeatable_scoring as scoring
from .._core.scores import checked_targets
from ..errors import DeepInsideError, check_count
from ..models.classifier import Classifier
from ..models.preprocessing import Preprocessing
from .early_stop import EarlyStop, target_probability
from .objectives import Objective, State
from .param import Param, ParamSpec, check_size
from .presets import Preset
from .regularizers import StepContext
from .resampling import resample
from .result import ClassModels, ObjectiveLog
from .schedule import octave_sizes
from .transforms import Transform, TransformContext, apply, fused, translations

Score = Callable[[torch.Tensor], torch.Tensor]


def render_classes(
    model: nn.Module,
    targets: Sequence[int],
    preset: Preset,
    objective: Objective | None = None,
    *,
    size: int | tuple[int, int] | None = None,
    preprocessing: Preprocessing | None = None,
    batch_size: int = 8,
    seed: int | torch.Generator = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    progress: bool | None = False,
    labels: Sequence[str] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> ClassModels:
    """Maximise ``objective`` for each class in ``targets`` by gradient ascent,
    with the recipe ``preset`` (its parameterisation, update, steps,
    transforms, octaves, views, averaging and early stop).

    Args:
        model: a classifier ``(B, 3, H, W) -> (B, C)`` scores; not changed.
        targets: class indices ``K``.
        preset: the recipe (see :mod:`.presets`); ``dataclasses.replace``
            varies one of its choices.
        objective: what to maximise (see :mod:`.objectives`; default: the
            preset's, ``preset.objective()``).
        size: image size ``PX`` or ``(H, W)`` (default: the model's input size).
        preprocessing: the model's input convention (default: the
            Classifier's, or ImageNet's for a plain module).
        batch_size: classes optimised together (bounds memory).
        seed: an int, or a generator to draw one from.
        device, dtype: must match the model's (default: the model's).
        progress: show a progress bar on stderr (None: only on a terminal).
        labels: display names (default: the model's class names).
        on_step: called after each step with a :class:`StepReport`; raise
            from it to end the run.

    Returns:
        :class:`ClassModels`: images ``(K, 3, H, W)`` in [0, 1] and the log.
    """
    _check_preset(preset)
    check_count("batch size", batch_size)
    objective = preset.objective() if objective is None else objective
    if preprocessing is None:
        preprocessing = model.preprocessing if isinstance(model, Classifier) else Preprocessing()
    hw = check_size(size if size is not None else preprocessing.input_size)
    device, dtype = _placement(model, device, dtype)
    targets = [int(t) for t in targets]
    labels = _labels(model, targets, labels)
    sizes = octave_sizes(
        preset.octaves, hw, preset.steps, preset.interleave, preset.late_octaves, preset.late_from
    )
    base = _base_seed(seed)
    start = time.perf_counter()
    with ExitStack() as stack:
        score = _enter_scoring(stack, model, torch.zeros(1, 3, *hw, device=device, dtype=dtype), targets)
        bar = stack.enter_context(_progress_bar(len(targets), batch_size, preset.steps, progress))
        loop = _Loop(score, objective, preset, sizes, hw, preprocessing, device, dtype, base)
        found = _render_batches(loop, targets, labels, batch_size, bar, on_step)
    return ClassModels(
        images=found.images,
        log=ObjectiveLog(found.log_s, found.log_p, found.log_o, sizes, objective.name, found.run),
        targets=torch.tensor(targets, dtype=torch.long),
        labels=labels,
        final_scores=found.final_s,
        final_probabilities=found.final_p,
        failures=found.failures,
        seconds=time.perf_counter() - start,
    )


def _render_batches(
    loop: _Loop,
    targets: list[int],
    labels: list[str],
    batch_size: int,
    bar: tqdm,
    on_step: Callable[[StepReport], None] | None,
) -> _Found:
    """Every class rendered, ``batch_size`` at a time, each batch's failures
    warned about as soon as it ends."""
    found = _Found.empty(len(targets), loop.preset.steps, loop.size, loop.device, loop.dtype)
    for first in range(0, len(targets), batch_size):
        rows = slice(first, min(first + batch_size, len(targets)))
        chunk = _render_chunk(loop, targets[rows], _Progress(bar, first, len(targets), on_step))
        found.put(rows, chunk)
        _warn_failures(found.failures, chunk, first, targets, labels)
    return found


def _labels(model: nn.Module, targets: list[int], labels: Sequence[str] | None) -> list[str]:
    """The display names: the caller's, one per class, or the model's."""
    named = list(labels) if labels is not None else [_label(model, t) for t in targets]
    if len(named) != len(targets):
        raise DeepInsideError(f"{len(named)} labels for {len(targets)} classes: give one label per class")
    return named


def _progress_bar(classes: int, batch_size: int, steps: int, progress: bool | None) -> tqdm:
    return tqdm(
        total=math.ceil(classes / batch_size) * steps,
        desc="classmodel",
        unit="step",
        disable=(None if progress is None else not progress),
        leave=False,
    )


def _warn_failures(
    failures: dict[int, str], chunk: _Chunk, first: int, targets: list[int], labels: list[str]
) -> None:
    """Record and warn about each class of ``chunk`` that stopped being
    finite; the warning points at the caller of :func:`render_classes`
    (three calls up)."""
    for b, (step, why) in chunk.failed.items():
        k = first + b
        failures[k] = (
            f"class {targets[k]} ({labels[k]}): {why} at step {step + 1}; "
            "stopped it there and kept its picture from before that step"
        )
        warnings.warn(failures[k], RuntimeWarning, stacklevel=4)


@dataclass
class _Found:
    """What a run gathers from its batches, row ``k`` for ``targets[k]``:
    pictures, the logs ``(K, steps)``, final S_c and P_c, steps run, failures."""

    images: torch.Tensor
    log_s: torch.Tensor
    log_p: torch.Tensor
    log_o: torch.Tensor
    final_s: torch.Tensor
    final_p: torch.Tensor
    run: torch.Tensor
    failures: dict[int, str]

    @classmethod
    def empty(
        cls, k: int, steps: int, hw: tuple[int, int], device: torch.device, dtype: torch.dtype
    ) -> _Found:
        log = torch.full((k, steps), float("nan"), dtype=torch.float64)
        return cls(
            images=torch.empty(k, 3, *hw, device=device, dtype=dtype),
            log_s=log,
            log_p=log.clone(),
            log_o=log.clone(),
            final_s=torch.empty(k, dtype=torch.float64),
            final_p=torch.empty(k, dtype=torch.float64),
            run=torch.empty(k, dtype=torch.long),
            failures={},
        )

    def put(self, rows: slice, chunk: _Chunk) -> None:
        self.images[rows], self.run[rows] = chunk.pixels, chunk.steps_run
        self.final_s[rows], self.final_p[rows] = chunk.final_s, chunk.final_p
        self.log_s[rows], self.log_p[rows], self.log_o[rows] = chunk.log_s, chunk.log_p, chunk.log_o


def _check_preset(preset: Preset) -> None:
    if not isinstance(preset, Preset):
        raise DeepInsideError(f"preset must be a Preset, got {type(preset).__name__}")
    check_count("steps", preset.steps)
    check_count("views", preset.views)
    average = preset.average
    if isinstance(average, bool) or not isinstance(average, (int, float)) or not 0.0 <= average < 1.0:
        raise DeepInsideError(f"average is a decay per step in [0, 1), got {average!r}")
    late = preset.late_from
    if isinstance(late, bool) or not isinstance(late, int) or late < 0:
        raise DeepInsideError(f"late_from is a step, a whole number of at least 0, got {late!r}")
    start = preset.average_from
    if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 0):
        raise DeepInsideError(f"average_from is a step, a whole number of at least 0, got {start!r}")
    if preset.early_stop is not None and not isinstance(preset.early_stop, EarlyStop):
        raise DeepInsideError(f"early_stop must be an EarlyStop or None, got {preset.early_stop!r}")


def _enter_scoring(stack: ExitStack, model: nn.Module, example: torch.Tensor, targets: list[int]) -> Score:
    """The gradient engine's scoring function for ``model``, held open by
    ``stack``, after checking the targets against the model's classes."""
    try:
        score, _ = stack.enter_context(scoring(model, example))
        with torch.no_grad():
            scores = score(example.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, ValueError) as err:
        raise _model_error(tuple(example.shape[-2:]), err, batch=1) from err
    checked_targets(torch.tensor(targets[:1] * scores.shape[0]), scores)  # (B, classes) scores
    classes = scores.shape[1]
    bad = [t for t in targets if not 0 <= t < classes]
    if bad:
        raise DeepInsideError(f"class {bad[0]} is out of range: the model has classes 0 to {classes - 1}")
    return score


def _label(model: nn.Module, index: int) -> str:
    names = model.declared_classes if isinstance(model, Classifier) else None
    if names is not None and index < len(names):
        return names[index].label
    return f"class {index}"


def _placement(
    model: nn.Module, device: torch.device | str | None, dtype: torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    first = next(iter(model.parameters()), None)
    model_device = first.device if first is not None else torch.device("cpu")
    model_dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    device = torch.device(device) if device is not None else model_device
    dtype = dtype or model_dtype
    if first is not None and (
        device.type != model_device.type or (device.index or 0) != (model_device.index or 0)
    ):
        raise DeepInsideError(
            f"the model is on {model_device}, not {device}: move it with model.to({str(device)!r})"
        )
    if not dtype.is_floating_point:
        raise DeepInsideError(f"images need a floating-point dtype, got {dtype}")
    if first is not None and dtype != model_dtype:
        raise DeepInsideError(
            f"the model's weights are {model_dtype}, not {dtype}: convert it with model.to({dtype})"
        )
    return device, dtype


def _base_seed(seed: int | torch.Generator) -> int:
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**62, (), generator=seed))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DeepInsideError(f"seed must be a whole number or a torch.Generator, got {seed!r}")
    return seed


def _generator(base: int, target: int) -> torch.Generator:
    # splitmix-style mixing: distinct, well-spread streams per (seed, class);
    # class -1 is every batch's stream of draws common to its images.
    z = (base * 0x9E3779B97F4A7C15 + target * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 31)) * 0xD6E8FEB86659FD93) % 2**64
    return torch.Generator(device="cpu").manual_seed(z % 2**63)


@dataclass(frozen=True)
class _Loop:
    """What every batch of a run shares."""

    score: Score
    objective: Objective
    preset: Preset
    sizes: list[tuple[int, int]]  # what the model sees at each step
    size: tuple[int, int]  # the picture's
    preprocessing: Preprocessing
    device: torch.device
    dtype: torch.dtype
    seed: int


@dataclass(frozen=True)
class StepReport:
    """What ``render_classes``'s ``on_step`` callback is told after each step
    of a batch of classes, so that a caller (the web app) can show a run
    forming and end it: an exception raised by the callback ends the run
    and reaches the caller.

    Attributes:
        step, steps: steps done in this batch (from 1), and at most how many.
        first, total: position in ``targets`` of this batch's first class,
            and how many classes the run has.
        scores, probabilities: ``(B,)`` S_c and P_c of this batch's classes at
            this step (NaN for classes already stopped).
        pictures: makes the batch's pictures as they are now ``(B, 3, H, W)``
            in [0, 1] (costs a pass through the parameterisation: call it
            only when you show them).
    """

    step: int
    steps: int
    first: int
    total: int
    scores: torch.Tensor
    probabilities: torch.Tensor
    pictures: Callable[[], torch.Tensor]


@dataclass(frozen=True)
class _Progress:
    """The run's progress bar, how many classes came before this batch, and
    the caller's callback."""

    bar: tqdm
    done: int
    total: int
    on_step: Callable[[StepReport], None] | None = None


@dataclass
class _Chunk:
    """One batch's result: pixels, the S_c / P_c / objective logs ``(B,
    steps)``, the final S_c and P_c, the steps each row ran, and ``{row:
    (step, why it failed)}``."""

    pixels: torch.Tensor
    log_s: torch.Tensor
    log_p: torch.Tensor
    log_o: torch.Tensor
    final_s: torch.Tensor
    final_p: torch.Tensor
    steps_run: torch.Tensor
    failed: dict[int, tuple[int, str]]


class _Batch:
    """One batch of classes being optimised together: the parameters and
    the optimiser's state, which rows still run (neither failed nor done),
    the logs, and the averaged parameters."""

    def __init__(self, loop: _Loop, targets: list[int]) -> None:
        preset, device, steps = loop.preset, loop.device, loop.preset.steps
        self.size = len(targets)
        self.targets = torch.tensor(targets, device=device, dtype=torch.long)
        self.generators = [_generator(loop.seed, t) for t in targets]
        self.shared = _generator(loop.seed, -1)
        spec = ParamSpec(self.size, loop.size, loop.preprocessing, self.generators, device, loop.dtype)
        self.prm: Param = preset.param(spec)
        if preset.between_steps and self.prm.pixels is None:
            raise DeepInsideError(
                "blur and pixel clipping act on raw pixels: use the pixels parameterisation"
            )
        self.state = preset.optimizer.init(self.prm.params)
        self.active = torch.ones(self.size, dtype=torch.bool, device=device)
        self.failed: dict[int, tuple[int, str]] = {}
        self.done_at = torch.full((self.size,), steps, dtype=torch.long)
        self.log_s = torch.full((self.size, steps), float("nan"), dtype=torch.float64, device=device)
        self.log_p, self.log_o = self.log_s.clone(), self.log_s.clone()
        early = preset.early_stop
        self.average_from = (
            preset.average_from
            if preset.average_from is not None
            else (min(steps, early.first) if early else steps) // 2
        )
        self.averaged: list[torch.Tensor] = []
        # On a GPU every row goes through the network at every step, the
        # stopped ones masked (see _keeps_batch_shape).
        self.every_row = torch.arange(self.size, device=device) if _keeps_batch_shape(device) else None

    def running_rows(self) -> torch.Tensor:
        """The rows whose images are made and scored at this step."""
        return self.active.nonzero()[:, 0] if self.every_row is None else self.every_row

    def picture(self, preprocessing: Preprocessing) -> torch.Tensor:
        """The pictures as they would be returned now."""
        return _picture(self.prm, self.averaged, preprocessing)


@dataclass
class _Seen:
    """A step's scores of the running rows' views, and the objective per row."""

    rows: torch.Tensor  # the rows made and scored
    live: torch.Tensor  # which of them are still optimised
    scores: torch.Tensor  # (rows x views, classes)
    targets: torch.Tensor  # (rows x views,)
    values: torch.Tensor  # (rows,): the objective, the mean over the views


def _render_chunk(loop: _Loop, targets: list[int], progress: _Progress) -> _Chunk:
    """One batch of classes, optimised together."""
    batch, steps = _Batch(loop, targets), loop.preset.steps
    for step in range(steps):
        seen = _views_and_scores(loop, batch, step)
        s_c, p_c = _log_step(batch, seen, step)
        finite = _finite_rows(seen)
        total = torch.where(finite & seen.live, seen.values, torch.zeros_like(seen.values)).sum()
        grads = list(torch.autograd.grad(total, batch.prm.params))
        with torch.no_grad():
            _drop_non_finite(batch, seen, finite, grads, step)
            _update(loop, batch, grads, step)
            _stop_recognised(loop, batch, step)
        _show_progress(progress, step, steps, s_c, p_c)
        if progress.on_step is not None:
            _report(progress, loop, batch, step)
        if not bool(batch.active.any()):
            progress.bar.update(steps - step - 1)
            break
    return _finish(loop, batch)


def _views_and_scores(loop: _Loop, batch: _Batch, step: int) -> _Seen:
    """Make what the model sees of the running images this step (``views``
    random transforms of each, drawn one image after another from its own
    generator), score it, and evaluate the objective."""
    views = loop.preset.views
    rows = batch.running_rows()
    n = len(rows)
    step_generators = [batch.generators[b] for b in rows.tolist() for _ in range(views)]
    ctx = TransformContext(step, step_generators, loop.sizes[step], batch.shared)
    subset = None if n == batch.size else rows
    x, pictures = _seen(batch.prm, subset, views, loop.preset.transforms, ctx, loop.size)
    x = x.contiguous(memory_format=torch.channels_last)
    t_views = batch.targets[rows].repeat_interleave(views)
    try:
        scores = loop.score(x)
    except (RuntimeError, ValueError) as err:  # typically: an input the network refuses, or memory
        raise _model_error(tuple(x.shape[-2:]), err, batch=len(x), image=loop.size) from err
    values = loop.objective(State(scores, pictures, t_views))
    if values.shape != (n * views,):
        raise DeepInsideError(
            f"objective {loop.objective.name} gave shape {tuple(values.shape)}; "
            f"it must give one value per image ({n * views})"
        )
    return _Seen(rows, batch.active[rows], scores, t_views, values.view(n, views).mean(1))


@torch.no_grad()
def _log_step(batch: _Batch, seen: _Seen, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Record S_c, P_c and the objective of the rows still optimised (the
    mean over their views); return their S_c and P_c."""
    n, live = len(seen.rows), seen.live
    s_c = seen.scores.gather(1, seen.targets[:, None])[:, 0].view(n, -1).mean(1)[live]
    p_c = target_probability(seen.scores, seen.targets).view(n, -1).mean(1)[live]
    kept = seen.rows[live]
    batch.log_s[kept, step], batch.log_p[kept, step], batch.log_o[kept, step] = (
        s_c.double(),
        p_c.double(),
        seen.values[live].double(),
    )
    return s_c, p_c


@torch.no_grad()
def _finite_rows(seen: _Seen) -> torch.Tensor:
    """``(rows,)``: whether a row's objective and all its views' scores are finite."""
    n = len(seen.rows)
    return seen.values.isfinite() & seen.scores.isfinite().all(1).view(n, -1).all(1)


def _drop_non_finite(
    batch: _Batch, seen: _Seen, finite: torch.Tensor, grads: list[torch.Tensor], step: int
) -> None:
    """Stop the rows whose objective or gradient is no longer finite, which
    would give a non-finite update; the others go on."""
    broken = torch.zeros_like(batch.active)
    broken[seen.rows] = ~finite & seen.live
    _record(batch.failed, broken, step, "the objective became NaN or infinite")
    batch.active &= ~broken
    # A row's sum is finite exactly when all of it is (short of overflow),
    # at a fraction of an isfinite pass's cost.
    ok = batch.active.clone()
    for g in grads:
        ok &= g.flatten(1).sum(1).isfinite()
    _record(batch.failed, batch.active & ~ok, step, "its gradient became NaN or infinite")
    batch.active &= ok


def _update(loop: _Loop, batch: _Batch, grads: list[torch.Tensor], step: int) -> None:
    """One update of the running rows, then the between-step regularisers
    and the average of the parameters."""
    preset, active, params = loop.preset, batch.active, batch.prm.params
    if bool(active.any()):
        moving = None
        if not bool(active.all()):  # the others' gradients may be anything
            moving = active
            grads = [torch.where(_rows(active, g), g, torch.zeros_like(g)) for g in grads]
        preset.optimizer.step(params, grads, batch.state, step, preset.steps, moving)
        for op in preset.between_steps:
            assert batch.prm.pixels is not None  # a batch with between-step ops has raw pixels (_Batch)
            op(batch.prm.pixels, StepContext(step, grads[0], active))
    if preset.average and step >= batch.average_from:
        _update_average(batch.averaged, params, preset.average, active)


def _stop_recognised(loop: _Loop, batch: _Batch, step: int) -> None:
    """Where the early stop is due, mark the classes whose picture the model
    recognises at a coarser scale as done. (After the last step a check
    could not change anything.)"""
    rule, active = loop.preset.early_stop, batch.active
    if rule is None or step >= loop.preset.steps - 1 or not rule.due(step) or not bool(active.any()):
        return
    now = batch.running_rows()
    sure = torch.zeros_like(active)
    pictures = batch.picture(loop.preprocessing)[now]
    sure[now] = rule.sure(loop.score, pictures, batch.targets[now], loop.preprocessing)
    sure &= active
    batch.done_at[sure.cpu()] = step + 1
    active &= ~sure


def _show_progress(progress: _Progress, step: int, steps: int, s_c: torch.Tensor, p_c: torch.Tensor) -> None:
    bar = progress.bar
    bar.update()
    if not bar.disable and (bar.n % 4 == 0 or step == steps - 1):
        done = f"classes {progress.done}/{progress.total}"
        bar.set_postfix_str(
            f"{done} S_c {float(s_c.mean()):.3g} P_c {float(p_c.mean()):.2f}",
            refresh=False,
        )


def _report(progress: _Progress, loop: _Loop, batch: _Batch, step: int) -> None:
    assert progress.on_step is not None
    progress.on_step(
        StepReport(
            step + 1,
            loop.preset.steps,
            progress.done,
            progress.total,
            batch.log_s[:, step].cpu(),
            batch.log_p[:, step].cpu(),
            lambda: batch.picture(loop.preprocessing),
        )
    )


def _finish(loop: _Loop, batch: _Batch) -> _Chunk:
    """The batch's pictures, their S_c and P_c as returned (untransformed, at
    full size), and the steps each class ran."""
    pixels = batch.picture(loop.preprocessing)
    with torch.no_grad():
        final = loop.score(loop.preprocessing.normalize(pixels).contiguous(memory_format=torch.channels_last))
        final_s = final.gather(1, batch.targets[:, None])[:, 0].double().cpu()
        final_p = target_probability(final, batch.targets).double().cpu()
    failed = batch.failed
    steps_run = torch.tensor(
        [failed[b][0] + 1 if b in failed else int(batch.done_at[b]) for b in range(batch.size)]
    )
    return _Chunk(
        pixels.contiguous(),
        batch.log_s.cpu(),
        batch.log_p.cpu(),
        batch.log_o.cpu(),
        final_s,
        final_p,
        steps_run,
        failed,
    )


def _seen(
    prm: Param,
    rows: torch.Tensor | None,
    views: int,
    transforms: Sequence[Transform],
    ctx: TransformContext,
    size: tuple[int, int],
) -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """What the model sees at this step of the images of parameter ``rows``
    (None: all), ``views`` times each, and a function that makes the images
    themselves (each view's), for objectives that read them. Where the
    parameterisation can move its images (the Fourier one) and an image's
    transforms come to a translation at its own scale (every image's:
    batches do not split), the windows are made directly: no resampling,
    and the colour mixing and sigmoid for the windows only. Otherwise the
    images are made whole and resampled."""
    made: list[torch.Tensor] = []

    def pictures() -> torch.Tensor:
        if not made:
            image = prm.image(rows)
            made.append(image.repeat_interleave(views, 0) if views > 1 else image)
        return made[0]

    batch = len(prm.params[0]) if rows is None else len(rows)
    matrix = fused(transforms, (batch * views, 3, *size), ctx) if prm.window_of is not None else None
    if matrix is None:
        return apply(transforms, pictures(), ctx), pictures
    shifts, moved = translations(matrix, size, ctx.size)
    if not bool(moved.all()):
        return resample(pictures(), matrix, ctx.size), pictures
    if rows is None and views == 1:
        return prm.window(None, shifts, ctx.size), pictures
    each = torch.arange(batch, device=prm.params[0].device) if rows is None else rows
    return prm.window(each.repeat_interleave(views), shifts, ctx.size), pictures


@torch.no_grad()
def _picture(prm: Param, averaged: list[torch.Tensor], preprocessing: Preprocessing) -> torch.Tensor:
    """The pictures as they would be returned now: from the averaged
    parameters where there are any, as pixels in [0, 1]."""
    image = prm.image_of(averaged) if averaged else prm.image()
    return preprocessing.denormalize(image).nan_to_num(0.5).clamp(0, 1)


def _update_average(
    averaged: list[torch.Tensor], params: list[torch.Tensor], decay: float, active: torch.Tensor
) -> None:
    if not averaged:
        averaged.extend(p.detach().clone() for p in params)
        return
    every = bool(active.all())
    for mean, p in zip(averaged, params):
        mean.lerp_(p, (1.0 - decay) * (1.0 if every else _rows(active, p).to(p.dtype)))


def _model_error(
    size: tuple[int, ...], err: Exception, batch: int, image: tuple[int, int] | None = None
) -> DeepInsideError:
    """What to do when the network fails on the loop's inputs: out of memory,
    or (most often otherwise) an input too small for it."""
    text = str(err).strip()
    first_line = text.splitlines()[0] if text else type(err).__name__
    seen = f"{size[0]}x{size[1]} inputs"
    if image is not None and tuple(image) != tuple(size):
        seen += f" (what it sees of the {image[0]}x{image[1]} image)"
    if isinstance(err, torch.OutOfMemoryError) or "allocate" in text:
        return DeepInsideError(
            f"out of memory for {batch} {seen} ({first_line}); use a smaller batch size or image size"
        )
    return DeepInsideError(f"the model failed on {seen} ({first_line}); try a larger size")


def _keeps_batch_shape(device: torch.device) -> bool:
    """Whether every class of a batch goes through the network at every step.
    On CUDA, yes: a batch whose stopped classes drop out takes a new shape
    each time one stops, and tuning kernels for each new shape cost more
    than the stopped classes' compute (docs/class-models.md). On the CPU,
    no: there the compute is the price."""
    return device.type == "cuda"


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _record(failed: dict[int, tuple[int, str]], newly: torch.Tensor, step: int, why: str) -> None:
    for b in newly.nonzero()[:, 0].tolist():
        failed.setdefault(b, (step, why))


__all__ = ["render_classes"]
