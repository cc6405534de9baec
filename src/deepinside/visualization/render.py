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
its gradient in a fixed order and cuDNN is left out: ``transforms.resample``).
Gradients come from the gradient engine's private, eval-mode copy of the
model (batch norm folded, padding inside the convolutions, channels-last): the caller's model is never
changed.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..attribution._engine import scoring
from ..attribution.targets import class_index
from ..errors import DeepInsideError
from ..models.classifier import Classifier
from ..models.preprocessing import Preprocessing
from .objectives import Objective, State
from .optim import Optimizer
from .param import Param, ParamFactory, ParamSpec, check_size
from .transforms import (
    BetweenSteps,
    StepContext,
    Transform,
    TransformContext,
    apply,
    fused,
    resample,
    translations,
)

#: A class named by index, or (with a :class:`Classifier`) by WordNet id or name.
ClassName = int | str

#: ``(scale, fraction)``: the model sees the image at ``scale`` times its size
#: for ``fraction`` of the steps (fractions are normalised to sum to 1).
Octave = tuple[float, float]


def check_count(name: str, value: object) -> None:
    """Refuse anything but a whole number of at least 1 (bools too) for ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeepInsideError(f"{name} must be a whole number of at least 1, got {value!r}")


@dataclass(frozen=True)
class EarlyStop:
    """Stop a class once its picture shows the class at a coarser scale, so
    the steps go to the classes that need them. At step ``first`` and every
    ``every`` steps after, the picture as it would be returned (averaged,
    clipped) is shrunk by ``scale`` and enlarged back; a class whose
    probability P_c for that blurred picture is at least ``probability`` is
    done, and the rest of its batch goes on without it. (A picture that only
    fools the network with fine texture loses the class at half scale: on
    100 development classes this check separated the pictures a second
    network recognised from those it did not better than the model's own
    confidence during the run.)"""

    probability: float = 0.95
    scale: float = 0.5
    first: int = 96
    every: int = 32

    def __post_init__(self) -> None:
        if not 0.0 < self.probability <= 1.0:
            raise DeepInsideError(f"early-stop probability must be in (0, 1], got {self.probability!r}")
        if not 0.0 < self.scale <= 1.0:
            raise DeepInsideError(f"early-stop scale must be in (0, 1], got {self.scale!r}")
        check_count("early-stop first", self.first)
        check_count("early-stop every", self.every)

    def due(self, step: int) -> bool:
        """Whether classes are checked after ``step`` (0-based)."""
        done = step + 1
        return done >= self.first and (done - self.first) % self.every == 0

    @torch.no_grad()
    def sure(
        self,
        score: Callable[[torch.Tensor], torch.Tensor],
        pixels: torch.Tensor,
        targets: torch.Tensor,
        preprocessing: Preprocessing,
    ) -> torch.Tensor:
        """``(K,)``: whether the model gives each picture (pixels ``(K, 3, H, W)``
        in [0, 1]) at least ``probability`` for its target after the blur."""
        small = F.interpolate(
            pixels, scale_factor=self.scale, mode="bilinear", antialias=True, align_corners=False
        )
        blurred = F.interpolate(small, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
        scores = score(preprocessing.normalize(blurred).contiguous(memory_format=torch.channels_last))
        return _probability(scores, targets) >= self.probability


@dataclass
class ObjectiveLog:
    """Per class and step: the class score S_c, the posterior P_c and the
    objective's value, as seen by the model at that step (after the
    transforms, at that step's size; the mean over the step's views).
    ``NaN`` after a class stopped.

    Attributes:
        scores, probabilities, objective: ``(K, steps)`` float64 tensors on the CPU.
        sizes: the ``(H, W)`` the model saw at each step.
        objective_name: what was maximised.
        steps_run: ``(K,)`` steps each class ran (fewer where it stopped).
    """

    scores: torch.Tensor
    probabilities: torch.Tensor
    objective: torch.Tensor
    sizes: list[tuple[int, int]]
    objective_name: str
    steps_run: torch.Tensor

    def rows(self, k: int) -> list[dict[str, object]]:
        """Class ``k``'s log as one record per step it ran (for JSON / CSV);
        non-finite values are None."""
        return [
            {
                "step": step + 1,
                "size": f"{h}x{w}",
                "score": _finite_or_none(float(self.scores[k, step])),
                "probability": _finite_or_none(float(self.probabilities[k, step])),
                "objective": _finite_or_none(float(self.objective[k, step])),
            }
            for step, (h, w) in enumerate(self.sizes[: int(self.steps_run[k])])
        ]


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


@dataclass
class ClassModels:
    """Class model visualisations.

    Attributes:
        images: ``(K, 3, H, W)`` pixels in [0, 1] (the optimised image mapped
            back through the model's preprocessing and clipped), on the
            model's device.
        log: the objective log.
        targets: class index of each image ``(K,)``.
        labels: a display name per image.
        final_scores, final_probabilities: S_c and P_c of each returned image
            ``(K,)`` (the clipped image, untransformed, at full size).
        failures: position in ``targets`` -> why that class failed (its
            objective or gradient stopped being finite).
        seconds: wall time of the whole run.

    ``images, log = visualize_class(...)`` unpacks it.
    """

    images: torch.Tensor
    log: ObjectiveLog
    targets: torch.Tensor
    labels: list[str]
    final_scores: torch.Tensor
    final_probabilities: torch.Tensor
    failures: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.images, self.log))


def class_indices(model: nn.Module, targets: ClassName | Sequence[ClassName] | torch.Tensor) -> list[int]:
    """Targets as class indices: names are resolved with a Classifier's class index."""
    if isinstance(targets, torch.Tensor):
        items: list[ClassName] = [int(t) for t in targets.reshape(-1).tolist()]
    elif isinstance(targets, (int, str)):
        items = [targets]
    else:
        items = list(targets)
    if not items:
        raise DeepInsideError("no classes given: name at least one class (index, WordNet id or name)")
    return [class_index(model, t) for t in items]


def _label(model: nn.Module, index: int) -> str:
    if isinstance(model, Classifier) and model._classes is not None and index < len(model._classes):
        return model._classes[index].label
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


def _octave_sizes(
    octaves: Sequence[Octave], size: tuple[int, int], steps: int, interleave: bool = False
) -> list[tuple[int, int]]:
    if not octaves:
        return [size] * steps
    total = sum(f for _, f in octaves)
    if total <= 0 or any(f < 0 or s <= 0 for s, f in octaves):
        raise DeepInsideError(f"octaves need positive scales and non-negative fractions, got {list(octaves)}")
    shares = [f / total for _, f in octaves]
    if interleave:
        order = _interleaved(shares, steps)
    else:
        ends = [round(sum(shares[: i + 1]) * steps) for i in range(len(shares) - 1)] + [steps]
        order = [next(i for i, end in enumerate(ends) if step < end) for step in range(steps)]
    return [(max(16, round(size[0] * octaves[i][0])), max(16, round(size[1] * octaves[i][0]))) for i in order]


def _interleaved(shares: list[float], steps: int) -> list[int]:
    """Octave indices step by step, each visited in turn as evenly as its
    share allows (the one furthest behind its share goes next)."""
    counts = [0] * len(shares)
    order = []
    for step in range(steps):
        i = max(range(len(shares)), key=lambda j: shares[j] * (step + 1) - counts[j])
        counts[i] += 1
        order.append(i)
    return order


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


def render(
    model: nn.Module,
    targets: Sequence[int],
    objective: Objective,
    param: ParamFactory,
    *,
    steps: int,
    optimizer: Optimizer,
    transforms: Sequence[Transform] = (),
    between_steps: Sequence[BetweenSteps] = (),
    octaves: Sequence[Octave] = (),
    interleave: bool = False,
    views: int = 1,
    average: float = 0.0,
    early_stop: EarlyStop | None = None,
    size: int | tuple[int, int] | None = None,
    preprocessing: Preprocessing | None = None,
    batch_size: int = 8,
    seed: int | torch.Generator = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    progress: bool | None = False,
    labels: Sequence[str] | None = None,
) -> ClassModels:
    """Maximise ``objective`` for each class in ``targets`` by gradient ascent.

    Args:
        model: a classifier ``(B, 3, H, W) -> (B, C)`` scores; not changed.
        targets: class indices ``K``.
        objective: what to maximise (see :mod:`.objectives`).
        param: how the image is parameterised (see :mod:`.param`).
        steps: number of updates (at least 1); at most this many with ``early_stop``.
        optimizer: the update rule (see :mod:`.optim`).
        transforms: robustness transforms before the model at each step.
        between_steps: regularisers applied to raw pixels after each update.
        octaves: ``(scale, fraction)`` pairs: the model sees the image at
            ``scale`` times ``size`` for that fraction of the steps (with a
            ``random_crop`` transform: a window of that size at the image's
            own scale).
        interleave: visit the octaves in turn, step by step, each as often as
            its fraction says, instead of one after another.
        views: random transforms of each image per step; the objective is
            their mean (a less noisy gradient for ``views`` times the cost).
        average: the final picture comes from an exponential moving
            average of the parameters, with this decay per step, from half
            the steps on (with ``early_stop``: from half its first check);
            it keeps what the steps agree on. 0 keeps the last step's.
        early_stop: stop each class once its picture shows the class at a
            coarser scale (see :class:`EarlyStop`); None runs every class
            for all ``steps``.
        size: image size ``PX`` or ``(H, W)`` (default: the model's input size).
        preprocessing: the model's input convention (default: the
            Classifier's, or ImageNet's for a plain module).
        batch_size: classes optimised together (bounds memory).
        seed: an int, or a generator to draw one from.
        device, dtype: must match the model's (default: the model's).
        progress: show a progress bar on stderr (None: only on a terminal).
        labels: display names (default: the model's class names).

    Returns:
        :class:`ClassModels`: images ``(K, 3, H, W)`` in [0, 1] and the log.
    """
    check_count("steps", steps)
    check_count("views", views)
    if isinstance(average, bool) or not isinstance(average, (int, float)) or not 0.0 <= average < 1.0:
        raise DeepInsideError(f"average is a decay per step in [0, 1), got {average!r}")
    check_count("batch size", batch_size)
    if early_stop is not None and not isinstance(early_stop, EarlyStop):
        raise DeepInsideError(f"early_stop must be an EarlyStop or None, got {early_stop!r}")
    if preprocessing is None:
        preprocessing = model.preprocessing if isinstance(model, Classifier) else Preprocessing()
    hw = check_size(size if size is not None else preprocessing.input_size)
    device, dtype = _placement(model, device, dtype)
    targets = [int(t) for t in targets]
    labels = list(labels) if labels is not None else [_label(model, t) for t in targets]
    if len(labels) != len(targets):
        raise DeepInsideError(f"{len(labels)} labels for {len(targets)} classes: give one label per class")
    sizes = _octave_sizes(octaves, hw, steps, interleave)
    base = _base_seed(seed)
    k_all = len(targets)

    images = torch.empty(k_all, 3, *hw, device=device, dtype=dtype)
    log_s = torch.full((k_all, steps), float("nan"), dtype=torch.float64)
    log_p, log_o = log_s.clone(), log_s.clone()
    final_s = torch.empty(k_all, dtype=torch.float64)
    final_p = torch.empty(k_all, dtype=torch.float64)
    run = torch.empty(k_all, dtype=torch.long)
    failures: dict[int, str] = {}
    start = time.perf_counter()
    example = torch.zeros(1, 3, *hw, device=device, dtype=dtype)
    chunks = math.ceil(k_all / batch_size)
    with ExitStack() as stack:
        try:
            score, _ = stack.enter_context(scoring(model, example))
            with torch.no_grad():
                classes = score(example.contiguous(memory_format=torch.channels_last)).shape[1]
        except RuntimeError as err:
            raise _model_error(hw, err, batch=1) from err
        bad = [t for t in targets if not 0 <= t < classes]
        if bad:
            raise DeepInsideError(f"class {bad[0]} is out of range: the model has classes 0 to {classes - 1}")
        bar = stack.enter_context(
            tqdm(
                total=chunks * steps,
                desc="classmodel",
                unit="step",
                disable=(None if progress is None else not progress),
                leave=False,
            )
        )
        for first in range(0, k_all, batch_size):
            rows = slice(first, min(first + batch_size, k_all))
            chunk_targets = targets[rows]
            out = _render_chunk(
                score,
                chunk_targets,
                objective,
                param,
                steps=steps,
                optimizer=optimizer,
                transforms=transforms,
                between_steps=between_steps,
                sizes=sizes,
                views=views,
                average=average,
                early_stop=early_stop,
                size=hw,
                preprocessing=preprocessing,
                generators=[_generator(base, t) for t in chunk_targets],
                shared=_generator(base, -1),
                device=device,
                dtype=dtype,
                bar=bar,
                done=first,
                total=k_all,
            )
            images[rows], run[rows] = out.pixels, out.steps_run
            final_s[rows], final_p[rows] = out.final_s, out.final_p
            log_s[rows], log_p[rows], log_o[rows] = out.log_s, out.log_p, out.log_o
            for b, (step, why) in out.failed.items():
                k = first + b
                failures[k] = (
                    f"class {targets[k]} ({labels[k]}): {why} at step {step + 1}; "
                    "stopped it there and kept its picture from before that step"
                )
                warnings.warn(failures[k], RuntimeWarning, stacklevel=2)
    return ClassModels(
        images=images,
        log=ObjectiveLog(log_s, log_p, log_o, sizes, objective.name, run),
        targets=torch.tensor(targets, dtype=torch.long),
        labels=labels,
        final_scores=final_s,
        final_probabilities=final_p,
        failures=failures,
        seconds=time.perf_counter() - start,
    )


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


def _render_chunk(
    score: Callable[[torch.Tensor], torch.Tensor],
    targets: list[int],
    objective: Objective,
    param: ParamFactory,
    *,
    steps: int,
    optimizer: Optimizer,
    transforms: Sequence[Transform],
    between_steps: Sequence[BetweenSteps],
    sizes: list[tuple[int, int]],
    views: int,
    average: float,
    early_stop: EarlyStop | None,
    size: tuple[int, int],
    preprocessing: Preprocessing,
    generators: list[torch.Generator],
    shared: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
    bar: tqdm,  # type: ignore[type-arg]
    done: int,
    total: int,
) -> _Chunk:
    """One batch of classes, optimised together."""
    batch = len(targets)
    t = torch.tensor(targets, device=device, dtype=torch.long)
    prm = param(ParamSpec(batch, size, preprocessing, generators, device, dtype))
    if between_steps and prm.pixels is None:
        raise DeepInsideError("blur and pixel clipping act on raw pixels: use the pixels parameterisation")
    state = optimizer.init(prm.params)
    active = torch.ones(batch, dtype=torch.bool, device=device)  # still optimised: neither failed nor done
    failed: dict[int, tuple[int, str]] = {}
    done_at = torch.full((batch,), steps, dtype=torch.long)
    log_s = torch.full((batch, steps), float("nan"), dtype=torch.float64, device=device)
    log_p, log_o = log_s.clone(), log_s.clone()
    channels_last = torch.channels_last
    average_from = (min(steps, early_stop.first) if early_stop else steps) // 2
    averaged: list[torch.Tensor] = []
    every_row = torch.arange(batch, device=device) if _keeps_batch_shape(device) else None
    for step in range(steps):
        # Only the active classes' images are made and go through the network
        # (on a GPU all of the batch's, stopped ones masked: see
        # _keeps_batch_shape); each draws its views' transforms one after
        # another from its own generator.
        rows = active.nonzero()[:, 0] if every_row is None else every_row
        live = active[rows]  # which of them are still optimised
        n = len(rows)
        step_generators = [generators[b] for b in rows.tolist() for _ in range(views)]
        ctx = TransformContext(step, step_generators, sizes[step], shared)
        x, pictures = _seen(prm, None if n == batch else rows, views, transforms, ctx, size)
        x = x.contiguous(memory_format=channels_last)
        t_views = t[rows].repeat_interleave(views)
        try:
            scores = score(x)
        except RuntimeError as err:  # typically: an input too small for the network, or memory
            raise _model_error(tuple(x.shape[-2:]), err, batch=len(x), image=size) from err
        values = objective(State(scores, pictures, t_views))
        if values.shape != (n * views,):
            raise DeepInsideError(
                f"objective {objective.name} gave shape {tuple(values.shape)}; "
                f"it must give one value per image ({n * views})"
            )
        values = values.view(n, views).mean(1)
        with torch.no_grad():
            s_c = scores.gather(1, t_views[:, None])[:, 0].view(n, views).mean(1)[live]
            p_c = _probability(scores, t_views).view(n, views).mean(1)[live]
            kept = rows[live]
            log_s[kept, step], log_p[kept, step], log_o[kept, step] = (
                s_c.double(),
                p_c.double(),
                values[live].double(),
            )
            finite = values.isfinite() & scores.isfinite().all(1).view(n, views).all(1)
        total_value = torch.where(finite & live, values, torch.zeros_like(values)).sum()
        grads = list(torch.autograd.grad(total_value, prm.params))
        with torch.no_grad():
            broken = torch.zeros_like(active)
            broken[rows] = ~finite & live
            _record(failed, broken, step, "the objective became NaN or infinite")
            active &= ~broken
            # A non-finite gradient would give a non-finite update: such rows
            # are frozen. A row's sum is finite exactly when all of it is
            # (short of overflow), at a fraction of an isfinite pass's cost.
            ok = active.clone()
            for g in grads:
                ok &= g.flatten(1).sum(1).isfinite()
            _record(failed, active & ~ok, step, "its gradient became NaN or infinite")
            active &= ok
            if bool(active.any()):
                moving = None
                if not bool(active.all()):  # the others' gradients may be anything
                    moving = active
                    grads = [torch.where(_rows(active, g), g, torch.zeros_like(g)) for g in grads]
                optimizer.step(prm.params, grads, state, step, steps, moving)
                for op in between_steps:
                    op(prm.pixels, StepContext(step, grads[0], active))
            if average and step >= average_from:
                _update_average(averaged, prm.params, average, active)
            # (after the last step a check could not change anything)
            if early_stop is not None and step < steps - 1 and early_stop.due(step) and bool(active.any()):
                now = active.nonzero()[:, 0] if every_row is None else every_row
                sure = torch.zeros_like(active)
                sure[now] = early_stop.sure(
                    score, _picture(prm, averaged, preprocessing)[now], t[now], preprocessing
                )
                sure &= active
                done_at[sure.cpu()] = step + 1
                active &= ~sure
        bar.update()
        if not bar.disable and (bar.n % 4 == 0 or step == steps - 1):
            bar.set_postfix_str(
                f"classes {done}/{total} S_c {float(s_c.mean()):.3g} P_c {float(p_c.mean()):.2f}",
                refresh=False,
            )
        if not bool(active.any()):
            bar.update(steps - step - 1)
            break
    pixels = _picture(prm, averaged, preprocessing)
    with torch.no_grad():
        final = score(preprocessing.normalize(pixels).contiguous(memory_format=channels_last))
        final_s = final.gather(1, t[:, None])[:, 0].double().cpu()
        final_p = _probability(final, t).double().cpu()
    steps_run = torch.tensor([failed[b][0] + 1 if b in failed else int(done_at[b]) for b in range(batch)])
    return _Chunk(
        pixels.contiguous(), log_s.cpu(), log_p.cpu(), log_o.cpu(), final_s, final_p, steps_run, failed
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
    size: tuple[int, ...], err: RuntimeError, batch: int, image: tuple[int, int] | None = None
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


def _probability(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(B,)``: the softmax probability of each row's target class (in float32 at least)."""
    return scores.float().softmax(1).gather(1, targets[:, None])[:, 0]


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _record(failed: dict[int, tuple[int, str]], newly: torch.Tensor, step: int, why: str) -> None:
    for b in newly.nonzero()[:, 0].tolist():
        failed.setdefault(b, (step, why))


__all__ = ["ClassModels", "EarlyStop", "ObjectiveLog", "Octave", "class_indices", "render"]
