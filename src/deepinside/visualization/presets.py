"""Ready recipes: the paper's, and the default that gives recognisable pictures.

A :class:`Preset` names every choice of a class model visualisation: the
parameterisation, the objective, the transforms, the update rule, the steps,
the octaves (one after another or in turn), the views per step and the
averaging of the parameters. ``visualize_class(model, targets, preset=...)``
runs one; ``dataclasses.replace(preset, steps=...)`` varies one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import DeepInsideError
from . import objectives, param, transforms
from .early_stop import EarlyStop
from .objectives import Objective
from .optim import Adam, GradientAscent, Optimizer
from .param import ParamFactory
from .regularizers import BetweenSteps
from .schedule import Octave
from .transforms import Transform


@dataclass(frozen=True)
class Preset:
    """One recipe. ``objective(kind)`` is the class term named ``kind``
    (``logit``, ``probability``, ``log-probability``; default ``logit``)
    minus the preset's ``penalty`` (a regulariser such as ``lam * l2()``).
    ``description`` says what the recipe is; a class model job keeps it in
    its folder's ``run.json`` to refuse resuming with another recipe, so a
    shipped preset's description changes whenever its recipe does.
    ``late_octaves``, where given, replace ``octaves`` from step
    ``late_from`` on. ``average_from`` is the step the averaging of the
    parameters starts at (default: half the first early-stop check's step,
    or half the steps without an early stop)."""

    name: str
    param: ParamFactory
    optimizer: Optimizer
    steps: int
    transforms: Sequence[Transform] = ()
    between_steps: Sequence[BetweenSteps] = ()
    octaves: Sequence[Octave] = ()
    interleave: bool = False
    late_octaves: Sequence[Octave] = ()
    late_from: int = 0
    views: int = 1
    average: float = 0.0
    average_from: int | None = None
    early_stop: EarlyStop | None = None
    penalty: Objective | None = None
    description: str = ""

    def stop_rule(self, early_stop: EarlyStop | bool | float | None = None) -> EarlyStop | None:
        """The early-stop rule to run: None keeps the preset's, False none,
        True the standard :class:`EarlyStop`, a number the preset's (or the
        standard) rule at that probability, or the rule given."""
        if early_stop is None:
            return self.early_stop
        if isinstance(early_stop, bool):
            return EarlyStop() if early_stop else None
        if isinstance(early_stop, (int, float)):
            return dataclasses.replace(self.early_stop or EarlyStop(), probability=float(early_stop))
        return early_stop

    def objective(self, kind: str = "logit") -> Objective:
        term = objectives.class_objective(kind)
        return term if self.penalty is None else term - self.penalty


# The paper's recipe: S_c(I) - lambda ||I||^2 by plain gradient ascent on the
# model-input image from zero. The paper gives no numbers: on
# EfficientNet-Lite0 a step of 100 diverges where 10 does not, and 50 steps
# reach P_c ~1 with the image inside the display range (docs/class-models.md).
PAPER_LAMBDA = 1e-3
PAPER_LR = 10.0
PAPER_STEPS = 50


def paper(lam: float = PAPER_LAMBDA, lr: float = PAPER_LR, steps: int = PAPER_STEPS) -> Preset:
    """Simonyan et al. 2013, section 2: ``argmax S_c(I) - lam ||I||_2^2`` by
    gradient ascent with step ``lr`` from the zero image, no other prior."""
    return Preset(
        name="paper",
        param=param.pixels(sd=0.0),
        optimizer=GradientAscent(lr),
        steps=steps,
        penalty=lam * objectives.l2() if lam else None,
        description=f"paper: S_c - {lam:g} ||I||^2, gradient ascent (step {lr:g}) from zero, {steps} steps",
    )


# Chosen on development classes disjoint from the benchmark's, judged by a
# second network; docs/class-models.md lists what was tried and measured.
# Windows at the picture's own scale make every part of it show the class;
# the whole picture every fourth step keeps one object whole; averaging the
# parameters keeps what the steps agree on; scale and rotation on only part
# of the steps let the others skip the resampling at no cost in quality.
DEFAULT_STEPS = 192
DEFAULT_WINDOWS = (0.55, 0.7, 0.85, 1.0)
DEFAULT_AVERAGE = 0.95
DEFAULT_WARPS = 0.4


def default(steps: int = DEFAULT_STEPS) -> Preset:
    """FFT 1/f parameterisation with colour decorrelation; at each step a
    random jitter, on 40% of the steps a random scale and rotation too (one
    resampling; the other steps move the Fourier picture instead), and the
    network sees a window of the image at its own scale, at a random place,
    of 0.55, 0.7, 0.85 and 1.0 of the image in turn; Adam at a constant 0.05
    maximising S_c; the picture is a moving average of the parameters
    (decay 0.95) from step 48 on. A class stops early (from step 96) once
    the model gives its picture P_c >= 0.95 both as it is and at half scale."""
    return Preset(
        name="default",
        param=param.fft(sd=0.01, decay_power=1.0, decorrelate=True),
        optimizer=Adam(0.05),
        steps=steps,
        transforms=(
            transforms.jitter(8),
            transforms.random_apply(
                (transforms.random_scale(0.9, 1.1), transforms.random_rotate(10)), DEFAULT_WARPS
            ),
            transforms.jitter(4),
            transforms.random_crop(),
        ),
        octaves=tuple((w, 1.0) for w in DEFAULT_WINDOWS),
        interleave=True,
        average=DEFAULT_AVERAGE,
        early_stop=EarlyStop(),
        description="default: FFT 1/f + colour decorrelation, jitter (scale/rotate on 40% of steps), "
        "windows of 0.55-1.0 in turn, Adam 0.05, parameters averaged from step 48, "
        "early stop when recognised as it is and at half scale",
    )


# For a second network's higher confidence, at more cost: the whole picture
# on two steps in five instead of one in four keeps one object whole more
# often, which is what a network judging the whole picture rewards; a class
# stops once its picture, shrunk to 0.35 and enlarged back, is still P_c >=
# 0.99 to the model (a stricter test of coarse shape than the default's),
# checked from step 128, at most 320 steps: most classes stop well before,
# and the ones that do not still gain a second network's confidence late,
# where Lucent's recipe has levelled off (docs/class-models.md has the
# measurements).
CONVINCING_STEPS = 320
CONVINCING_WINDOWS = ((0.55, 1.0), (0.7, 1.0), (0.85, 1.0), (1.0, 2.0))
CONVINCING_STOP = EarlyStop(probability=0.99, scale=0.35, first=128)


def convincing(steps: int = CONVINCING_STEPS) -> Preset:
    """The default preset with the whole picture on two steps in five (the
    windows 0.55, 0.7, 0.85 on one each), the parameters averaged from step
    48, and a stricter early stop: from step 128, every 32 steps, a class is
    done once the model gives its picture P_c >= 0.99 both as it is and
    shrunk to 0.35 and enlarged back; at most 320 steps."""
    return dataclasses.replace(
        default(steps),
        name="convincing",
        octaves=CONVINCING_WINDOWS,
        average_from=48,
        early_stop=CONVINCING_STOP,
        description="convincing: the default's recipe with the whole picture on 2 steps in 5, "
        "averaged from step 48, early stop from step 128 when recognised as it is and at 0.35 scale "
        "with P_c >= 0.99, at most 320 steps",
    )


PRESETS: dict[str, Callable[[], Preset]] = {"paper": paper, "default": default, "convincing": convincing}


def get(name: str | Preset) -> Preset:
    """A preset by name (``paper``, ``default`` or ``convincing``), or the preset itself."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]()
    except KeyError:
        raise DeepInsideError(f"unknown preset {name!r}: use {', '.join(PRESETS)}") from None


__all__ = ["PRESETS", "Preset", "convincing", "default", "get", "paper"]
