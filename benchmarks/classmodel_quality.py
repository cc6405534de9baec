"""Class model visualisation: quality and speed, measured.

Renders a fixed list of classes with each preset and with a faithful
re-implementation of Lucent's recipe (``render_vis`` defaults: FFT
parameterisation with 1/f scaling and colour decorrelation, sd 0.01, its
``standard_transforms`` (pad 12 with grey, jitter 8, random scale
0.9..1.1 in steps of 0.02, random rotation -10..10 degrees, jitter 4), Adam
at 0.05, maximising the class logit), all in the same run. Then

1. the optimised model (EfficientNet-Lite0) classifies its own pictures
   (top-1, mean probability of the target), and
2. a different pretrained model, EfficientNet-Lite1 (input 240), judges them
   (top-1 and top-5 on the target classes).

Pictures are judged as saved: 8-bit pixels. Lucent's curve comes from one
256-step run judged at 16, 32, 64, ... and 256 steps (constant learning rate,
so a snapshot at step n is exactly an n-step run); each preset's cost is then
set against the fewest Lucent steps that reach its judge accuracy.

Lucent's recipe runs here through deepinside's fast model copy (the same
function, computed faster), so the times compare recipes; Lucent itself runs
the model as it is, and the timing part measures how much longer its recipe
takes that way (``lucent_as_it_runs``).

Also times a step against the floor: one forward and backward of the same
batch through the same fast model copy, and through the plain model.

    python benchmarks/classmodel_quality.py                 # 100 classes (long)
    python benchmarks/classmodel_quality.py --classes 12    # a quick look
    python benchmarks/classmodel_quality.py --presets default --lucent-steps 0 --seeds 0 1 2   # seed spread
    python benchmarks/classmodel_quality.py --threads 1 --lucent-steps 96 --save-images /tmp/q.pt
    python benchmarks/classmodel_quality.py --figure-from /tmp/q.pt --figure docs/classmodel_figure.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _results import write_results
from _timing import median_seconds
from tqdm import tqdm

import deepinside
from deepinside._core.allocator import keep_freed_memory
from deepinside._core.gradients import scoring
from deepinside.models.graph import eval_mode
from deepinside.visualization import param as vparam
from deepinside.visualization import presets, visualize_class
from deepinside.visualization import transforms as T

# 100 classes, one in ten across ImageNet's order: fish, birds, reptiles,
# 11 dog breeds, wild animals, insects, many objects, food, two scenes.
CLASSES_100 = list(range(0, 1000, 10))
# 12 classes disjoint from the 100, for a quick look (the presets' settings
# were chosen on range(5, 1000, 10): see presets.py).
CLASSES_DEV = [3, 86, 169, 252, 335, 418, 501, 584, 667, 751, 833, 916]


# ------------------------------------------------------------ Lucent's recipe


def lucent_render(
    model: torch.nn.Module,
    prep: deepinside.Preprocessing,
    targets: Sequence[int],
    steps: int,
    size: int,
    seed: int,
    snapshots: Sequence[int],
    batch_size: int = 8,
    as_lucent_runs_it: bool = False,
) -> dict[int, torch.Tensor]:
    """Lucent's ``render_vis(model, "labels:c", param_f=lambda: param.image(size, batch=B, fft=True,
    decorrelate=True))`` with its default optimiser and transforms, batched over classes (Lucent
    draws one random transform per step for the whole batch). Returns pixels in [0, 1] at each
    snapshot step. The model runs through deepinside's fast copy (the same function, about twice
    as fast), so that the comparison is of recipes; ``as_lucent_runs_it`` runs the model itself,
    as Lucent does."""
    rng = np.random.default_rng(seed)
    out: dict[int, list[torch.Tensor]] = {s: [] for s in snapshots}
    scales = [1 + (i - 5) / 50.0 for i in range(11)]
    angles = list(range(-10, 11)) + 5 * [0]
    mean = torch.tensor(prep.mean).view(3, 1, 1)
    std = torch.tensor(prep.std).view(3, 1, 1)

    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, [12] * 4, mode="constant", value=0.5)

    def jitter(x: torch.Tensor, d: int) -> torch.Tensor:
        dx, dy = rng.choice(d), rng.choice(d)
        return x[:, :, dy : dy + x.shape[2] - d, dx : dx + x.shape[3] - d]

    def rup(v: float) -> int:
        return int(np.ceil(v))

    def random_scale(x: torch.Tensor) -> torch.Tensor:
        scale = rng.choice(scales)
        shp = x.shape[2:]
        new = [rup(scale * d) for d in shp]
        pad_x = max(0, rup((shp[1] - new[1]) / 2))
        pad_y = max(0, rup((shp[0] - new[0]) / 2))
        up = F.interpolate(x, size=new, mode="bilinear", align_corners=True)
        return F.pad(up, [pad_y, pad_x] * 2)

    def random_rotate(x: torch.Tensor) -> torch.Tensor:
        # kornia.geometry.transform.rotate: about the centre, bilinear, zero padding, align_corners=True.
        a = float(np.deg2rad(rng.choice(angles)))
        b, _, h, w = x.shape
        cos, sin = np.cos(a), np.sin(a)
        theta = torch.tensor([[cos, sin * h / w, 0.0], [-sin * w / h, cos, 0.0]], dtype=x.dtype).expand(
            b, 2, 3
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    if as_lucent_runs_it:  # the model itself, in eval mode, channels first
        mode, view, layout = eval_mode(model), nullcontext((model, None)), torch.contiguous_format
    else:
        mode, view, layout = nullcontext(), scoring(model, torch.zeros(1, 3, size, size)), torch.channels_last
    with mode, view as (score, _):
        for first in range(0, len(targets), batch_size):
            chunk = list(targets[first : first + batch_size])
            b = len(chunk)
            gen = torch.Generator().manual_seed(seed + first)
            freqs = vparam.fft_frequencies(size, size).float()
            scale = (1.0 / freqs.clamp_min(1.0 / size))[None, None, :, :, None]
            spectrum = (torch.randn(b, 3, *freqs.shape, 2, generator=gen) * 0.01).requires_grad_(True)
            colour = vparam.color_correlation()
            t = torch.tensor(chunk)

            def image() -> torch.Tensor:
                x = (
                    torch.fft.irfftn(torch.view_as_complex(scale * spectrum), s=(size, size), norm="ortho")
                    / 4.0
                )
                x = torch.einsum("ij,bjhw->bihw", colour, x)
                return torch.sigmoid(x)

            opt = torch.optim.Adam([spectrum], lr=5e-2)
            for step in range(1, steps + 1):
                opt.zero_grad()
                x = image()
                x = jitter(random_rotate(random_scale(jitter(pad(x), 8))), 4)
                x = ((x - mean) / std).contiguous(memory_format=layout)
                loss = -score(x).gather(1, t[:, None]).mean()
                loss.backward()
                opt.step()
                if step in out:
                    with torch.no_grad():
                        out[step].append(image().detach().clone())
    return {s: torch.cat(v) for s, v in out.items()}


# ------------------------------------------------------------------- judging


def quantised(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def classify(model: deepinside.Classifier, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """top-1, top-5 and mean target probability of ``model`` on pixels ``images``."""
    size = model.preprocessing.input_size
    x = quantised(images)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    probs = torch.cat([model(model.preprocessing.normalize(c)).softmax(1) for c in x.split(16)])
    top5 = probs.topk(5, dim=1).indices
    return {
        "top1": float((top5[:, 0] == targets).float().mean()),
        "top5": float((top5 == targets[:, None]).any(1).float().mean()),
        "mean_probability": float(probs.gather(1, targets[:, None]).mean()),
    }


def judged(
    own: deepinside.Classifier, judge: deepinside.Classifier, images: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    o, j = classify(own, images, targets), classify(judge, images, targets)
    return {
        "own_top1": o["top1"],
        "own_mean_probability": o["mean_probability"],
        "judge_top1": j["top1"],
        "judge_top5": j["top5"],
        "judge_mean_probability": j["mean_probability"],
    }


# ---------------------------------------------------------------- step timing


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    return 1000 * median_seconds(fn, repeats)


class _StepClock:
    """Stands in for the render loop's progress bar and notes the time at
    each step's end, so that a step is timed alone (no set-up, no final
    evaluation). Disabled, like the bar of a run without a terminal."""

    disable = True

    def __init__(self) -> None:
        self.n = 0
        self.ends = [time.perf_counter()]

    def __enter__(self) -> _StepClock:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n
        self.ends.append(time.perf_counter())

    def set_postfix_str(self, *_args: object, **_kwargs: object) -> None:
        return None


def step_kinds(preset: presets.Preset) -> dict[str, tuple[presets.Preset, float]]:
    """The kinds of step a preset takes, each as a preset that takes only
    that kind, and its share of the steps: where a transform is applied to
    part of the steps (``random_apply``), a step with it ("warped") and one
    without ("moved"); otherwise one kind ("every")."""
    chances = [t for t in preset.transforms if isinstance(t, T.RandomApply)]
    if not chances:
        return {"every": (preset, 1.0)}
    if len(chances) > 1:
        raise ValueError(
            "a preset with more than one random_apply: its kinds of step are not told apart here"
        )

    def always(p: float) -> presets.Preset:
        return dataclasses.replace(
            preset,
            transforms=tuple(
                T.random_apply(t.transforms, p) if isinstance(t, T.RandomApply) else t
                for t in preset.transforms
            ),
        )

    return {"warped": (always(1.0), chances[0].p), "moved": (always(0.0), 1 - chances[0].p)}


def step_timing(model: deepinside.Classifier, batch: int, repeats: int) -> list[dict[str, float]]:
    """Per-step time of the default preset's loop, at each of its window
    sizes, against the floor: forward + backward of the same batch through
    the same fast model copy (and, for scale, through the plain model).
    Floor and loop are timed in turns, ``repeats`` times (a turn: the floor
    5 times, then a render run's steps after the first two, for each kind of
    step); the overhead is given from the fastest of all samples of each
    (what the machine's load adds is never negative) and from their medians.
    A preset that scales and rotates on part of its steps takes two kinds
    of step, each timed alone and weighed by its share of the steps. The
    schedule's overhead weighs each size by its share of the steps."""
    preset = presets.default()
    shares = {s: f / sum(f for _, f in preset.octaves) for s, f in preset.octaves} or {1.0: 1.0}
    kinds = step_kinds(preset)
    render_module = sys.modules["deepinside.visualization.render"]
    rows = []
    with scoring(model, torch.zeros(1, 3, 224, 224)) as (score, _):
        for scale in sorted({1.0, *shares}):
            px = round(224 * scale)
            x0 = torch.randn(batch, 3, px, px)
            t = torch.arange(batch)

            def floor_view() -> None:
                x = x0.clone(memory_format=torch.channels_last).requires_grad_(True)
                torch.autograd.grad(score(x).gather(1, t[:, None]).sum(), x)

            def floor_plain() -> None:
                x = x0.clone().requires_grad_(True)
                torch.autograd.grad(model(x).gather(1, t[:, None]).sum(), x)

            def loop_steps(one: presets.Preset, steps: int = 8) -> list[float]:
                """Seconds of each step after the first two (warm-up), one render run."""
                clocks: list[_StepClock] = []
                render_module.tqdm = lambda *a, **k: clocks.append(_StepClock()) or clocks[-1]
                try:
                    visualize_class(model, list(range(batch)), preset=one, steps=steps, batch_size=batch)
                finally:
                    render_module.tqdm = tqdm
                ends = clocks[0].ends
                return [b - a for a, b in zip(ends[2:], ends[3:])]

            def floor_samples(calls: int = 5) -> list[float]:
                floor_view()
                out = []
                for _ in range(calls):
                    start = time.perf_counter()
                    floor_view()
                    out.append(time.perf_counter() - start)
                return out

            alone = {
                k: dataclasses.replace(kind, octaves=((scale, 1.0),), early_stop=None)
                for k, (kind, _) in kinds.items()
            }
            was = model.training
            model.eval()
            plain = median_ms(floor_plain, 3)
            model.train(was)
            floors: list[float] = []
            steps: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(repeats):
                floors += floor_samples()
                for k, one in alone.items():
                    steps[k] += loop_steps(one)
            fastest = sum(share * min(steps[k]) for k, (_, share) in kinds.items())
            typical = sum(share * statistics.median(steps[k]) for k, (_, share) in kinds.items())
            row = {
                "size": px,
                "scale": scale,
                "batch": batch,
                "floor_plain_ms": plain,
                "step_ms": 1000 * fastest,
                "floor_view_ms": 1000 * min(floors),
                "overhead_vs_floor": fastest / min(floors) - 1,
                "step_median_ms": 1000 * typical,
                "floor_median_ms": 1000 * statistics.median(floors),
                "overhead_of_medians": typical / statistics.median(floors) - 1,
                **{f"{k}_step_ms": 1000 * min(steps[k]) for k in kinds if len(kinds) > 1},
                **{f"{k}_share": share for k, (_, share) in kinds.items() if len(kinds) > 1},
            }
            rows.append(row)
            each = "".join(f" {k} {row[f'{k}_step_ms']:.0f} ms," for k in kinds if len(kinds) > 1)
            print(
                f"  {px}px: step{each} {row['step_ms']:.0f} ms, floor {row['floor_view_ms']:.0f} ms "
                f"(plain model {plain:.0f} ms): overhead {row['overhead_vs_floor']:+.1%} "
                f"(medians: {row['step_median_ms']:.0f} / {row['floor_median_ms']:.0f} ms, "
                f"{row['overhead_of_medians']:+.1%})",
                flush=True,
            )
    summary: dict[str, object] = {"size": "schedule", "batch": batch}
    for step_key, floor_key, name in (
        ("step_ms", "floor_view_ms", "overhead_vs_floor"),
        ("step_median_ms", "floor_median_ms", "overhead_of_medians"),
    ):
        summary[step_key] = sum(shares.get(r["scale"], 0.0) * r[step_key] for r in rows)
        summary[floor_key] = sum(shares.get(r["scale"], 0.0) * r[floor_key] for r in rows)
        summary[name] = summary[step_key] / summary[floor_key] - 1
    rows.append(summary)
    print(
        f"  the preset's schedule: step {summary['step_ms']:.0f} ms, "
        f"floor {summary['floor_view_ms']:.0f} ms: "
        f"overhead {summary['overhead_vs_floor']:+.1%} (medians: {summary['overhead_of_medians']:+.1%})",
        flush=True,
    )
    return rows


def lucent_model_cost(
    model: deepinside.Classifier, batch: int, repeats: int, steps: int = 8
) -> dict[str, float]:
    """Lucent runs the model itself; this benchmark runs its recipe through
    deepinside's fast copy. CPU seconds of ``steps`` steps of the recipe both
    ways, in turns (after a warm-up turn); ``ratio`` turns the recipe's time
    here into Lucent's own."""
    size = model.preprocessing.input_size[0]
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for turn in range(repeats + 1):
        for itself in (False, True):
            c0 = time.process_time()
            lucent_render(
                model,
                model.preprocessing,
                list(range(batch)),
                steps,
                size,
                turn,
                [steps],
                batch,
                as_lucent_runs_it=itself,
            )
            if turn:
                seconds[itself].append(time.process_time() - c0)
    fast, itself = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(
        f"  Lucent's recipe, {steps} steps at batch {batch}: {fast:.2f} CPU s through the fast copy, "
        f"{itself:.2f} through the model itself: x{itself / fast:.2f}",
        flush=True,
    )
    return {
        "steps": steps,
        "batch": batch,
        "fast_copy_cpu_seconds": fast,
        "model_itself_cpu_seconds": itself,
        "ratio": itself / fast,
    }


def lucent_timing_turn(
    model: deepinside.Classifier, chunk: Sequence[int], steps: int, size: int, seed: int, batch: int
) -> dict[str, float]:
    """CPU seconds of ``steps`` steps of Lucent's recipe on ``chunk``, timed only
    (no pictures kept): run before the presets on each chunk, while Lucent's
    picture run follows them, so that Lucent is timed on both sides of ours
    and a change of the machine's speed during a chunk falls on both alike."""
    c0 = time.process_time()
    lucent_render(model, model.preprocessing, chunk, steps, size, seed, [steps], batch)
    return {"cpu_seconds": time.process_time() - c0, "class_steps": steps * len(chunk)}


def lucent_rate(turns: Sequence[dict[str, object]]) -> dict[str, object]:
    """Lucent's CPU seconds a class-step over every timed run of its recipe
    (all its steps over all its CPU time), with the spread of the single
    runs' rates: their median, quartiles and range, and the standard error
    of the pooled rate (the runs' standard deviation over the square root of
    their number). Also, per preset, the chunk-by-chunk ratio of the preset's
    CPU seconds a class-step to Lucent's in the same chunk (median and
    quartiles): a paired measure, insensitive to slow drifts in the machine's
    speed (it varies also with the classes' steps at each window size)."""
    runs = [r for t in turns for r in t["lucent"]]
    rates = sorted(r["cpu_seconds"] / r["class_steps"] for r in runs)
    pooled = sum(r["cpu_seconds"] for r in runs) / sum(r["class_steps"] for r in runs)
    sd = statistics.stdev(rates) if len(rates) > 1 else float("nan")
    out: dict[str, object] = {
        "cpu_seconds_per_class_step": pooled,
        "runs": len(rates),
        "timed_class_steps": sum(r["class_steps"] for r in runs),
        "median": statistics.median(rates),
        "quartiles": quartiles(rates),
        "min": rates[0],
        "max": rates[-1],
        "standard_error": sd / len(rates) ** 0.5,
        "paired_ratio": {},
    }
    for key in turns[0]["presets"] if turns else ():
        ratios = [
            (t["presets"][key]["cpu_seconds"] / t["presets"][key]["class_steps"])
            / (sum(r["cpu_seconds"] for r in t["lucent"]) / sum(r["class_steps"] for r in t["lucent"]))
            for t in turns
            if t["lucent"] and t["presets"][key]["class_steps"]
        ]
        if ratios:
            out["paired_ratio"][key] = {"median": statistics.median(ratios), "quartiles": quartiles(ratios)}
    return out


def quartiles(values: Sequence[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]] if values else []
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


# ------------------------------------------------------- cost at equal quality


def over_seeds(per_seed: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """One row per method and step count: the mean of each measure over the
    seeds, and the range of judge top-1 (top-1 on 100 classes moves by a few
    points from one seed to the next)."""
    groups: dict[tuple[object, bool, object], list[dict[str, object]]] = {}
    for row in per_seed:
        steps_key = None if row["early_stop"] else row["steps"]
        groups.setdefault((row["method"], row["early_stop"], steps_key), []).append(row)
    out = []
    for rows in groups.values():
        mean = {
            k: sum(r[k] for r in rows) / len(rows)
            for k, v in rows[0].items()
            if isinstance(v, float) and k != "seed"
        }
        out.append(
            {
                **rows[0],
                **mean,
                "seeds": [r["seed"] for r in rows],
                "judge_top1_min": min(r["judge_top1"] for r in rows),
                "judge_top1_max": max(r["judge_top1"] for r in rows),
            }
        )
        del out[-1]["seed"]
    return out


def against_lucent(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """For each preset: the fewest Lucent-recipe steps whose judge top-1 reaches the preset's, and the
    preset's time as a fraction of that (None where Lucent never reached it within the steps run:
    then the fraction is at most the one against Lucent's longest run)."""
    lucent = sorted((r for r in rows if r["method"] == "lucent-recipe"), key=lambda r: r["steps"])
    out = []
    for row in rows:
        if row["method"] == "lucent-recipe" or not lucent:
            continue
        reached = next((r for r in lucent if r["judge_top1"] >= row["judge_top1"]), None)
        ref = reached or lucent[-1]
        out.append(
            {
                "method": row["method"],
                "steps": row["steps"],
                "judge_top1": row["judge_top1"],
                "lucent_steps": ref["steps"] if reached else None,
                "lucent_longest_steps": lucent[-1]["steps"],
                "time_fraction": row["cpu_seconds_per_class"] / ref["cpu_seconds_per_class"],
                "bound_only": reached is None,
            }
        )
    return out


def lucent_steps_for(curve: Sequence[tuple[float, float]], probability: float) -> float | None:
    """The steps at which Lucent's curve ``(steps, mean judge P)`` first reaches
    ``probability``, straight between its snapshots (from the best one before)."""
    best = (0.0, 0.0)
    for steps, p in sorted(curve):
        if p >= probability:
            return best[0] + (steps - best[0]) * (probability - best[1]) / (p - best[1])
        if p > best[1]:
            best = (steps, p)
    return None


def against_lucent_probability(
    rows: Sequence[dict[str, object]], curve_file: Path, target: float, timing: dict[str, object]
) -> list[dict[str, object]]:
    """For each preset: Lucent's time for the preset's mean judge probability
    (and for ``target``): its CPU seconds a class-step in this run (``timing``,
    from :func:`lucent_rate`) times the steps its stored curve (``curve_file``,
    one seed-0 run) needs for it. The fraction's standard error is the
    rate's, relative; its spread, the fraction at the quartiles of the
    single runs' rates."""
    stored = json.loads(curve_file.read_text())["results"]["rows"]
    curve = [(r["steps"], r["judge_mean_probability"]) for r in stored if r["method"] == "lucent-recipe"]
    rate = timing["cpu_seconds_per_class_step"]
    relative_error = timing["standard_error"] / rate
    out = []
    for row in rows:
        if row["method"] == "lucent-recipe":
            continue
        p = row["judge_mean_probability"]
        entry: dict[str, object] = {"method": row["method"], "judge_mean_probability": p}
        entry["lucent_cpu_seconds_per_class_step"] = rate
        for name, prob in (("own", p), ("target", target)):
            steps = lucent_steps_for(curve, prob)
            entry[f"lucent_steps_{name}"] = steps
            entry[f"time_fraction_{name}"] = fraction = (
                row["cpu_seconds_per_class"] / (steps * rate) if steps else None
            )
            if fraction is not None:
                entry[f"time_fraction_{name}_standard_error"] = fraction * relative_error
                entry[f"time_fraction_{name}_at_rate_quartiles"] = [
                    row["cpu_seconds_per_class"] / (steps * q) for q in reversed(timing["quartiles"])
                ]
        entry["target_probability"] = target
        out.append(entry)
    return out


# ---------------------------------------------------------------------- main


FIGURE_CLASSES = [10, 100, 210, 290, 330, 510, 620, 810, 950, 970]


def draw_figure(saved: dict[str, torch.Tensor], targets: Sequence[int], path: Path) -> None:
    """Paper preset | default preset | Lucent's recipe, one row per class, from saved pictures."""
    from deepinside.io.files import write_png
    from deepinside.pictures import figure
    from deepinside.visualization.output import to_picture

    names = deepinside.imagenet_classes()
    lucent = max(
        (k for k in saved if k.startswith("lucent")), key=lambda k: int(k.split("@")[1]), default=None
    )
    columns = [k for k in ("paper", "default", lucent) if k and k in saved]
    rows, caps = [], []
    shown = [c for c in FIGURE_CLASSES if c in targets]
    if len(shown) < 4:
        shown = sorted(targets)[:8]
    for c in shown:
        i = list(targets).index(c)
        rows.append([to_picture(saved[k][i]) for k in columns])
        caps.append(f"{names[c].label} ({c})")
    title = "Lite0: " + " | ".join(k if "@" not in k else f"Lucent {k.split('@')[1]} st." for k in columns)
    write_png(path, figure(rows, caps, cell=160, title=title))
    print(f"wrote {path}")


def preset_named(key: str) -> presets.Preset:
    """``NAME``: a preset as it ships (with its early stop, if any); ``NAME@STEPS``:
    every class runs exactly STEPS steps."""
    name, _, steps = key.partition("@")
    preset = presets.get(name)
    return dataclasses.replace(preset, steps=int(steps), early_stop=None) if steps else preset


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--classes",
        type=int,
        choices=(100, 12),
        default=100,
        help="100: the fixed list; 12: a quick look at 12 others",
    )
    parser.add_argument(
        "--presets",
        nargs="*",
        default=["paper", "default", "default@128", "default@192"],
        help="preset names; NAME@STEPS runs every class for exactly STEPS steps (no early stop)",
    )
    parser.add_argument("--lucent-steps", type=int, default=256, help="0 skips Lucent's recipe")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--seeds",
        "--seed",
        dest="seeds",
        type=int,
        nargs="+",
        default=[0],
        help="run every method once per seed; the table gives the mean and range over seeds",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--timing-repeats", type=int, default=6, help="0 skips the step timing")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/classmodel_quality.json"))
    parser.add_argument("--save-images", type=Path, help="write the pictures here (.pt)")
    parser.add_argument("--figure", type=Path, help="draw the comparison figure here (PNG)")
    parser.add_argument(
        "--figure-from", type=Path, help="only draw --figure from pictures saved by --save-images"
    )
    parser.add_argument("--timing-only", action="store_true", help="only time a step against the floor")
    parser.add_argument(
        "--lucent-curve",
        type=Path,
        help="a stored run of Lucent's recipe (its JSON): also set each preset's time against the steps "
        "that run needed for the preset's mean judge probability, at this run's cost of a Lucent step",
    )
    parser.add_argument("--target-probability", type=float, default=0.88, help="with --lucent-curve")
    parser.add_argument(
        "--lucent-timing-steps",
        type=int,
        default=16,
        help="also time this many steps of Lucent's recipe before the presets on each chunk (0: none), "
        "so that its cost a step is measured on both sides of theirs",
    )
    args = parser.parse_args()
    keep_freed_memory()  # as the command line does
    if args.figure_from:
        saved = torch.load(args.figure_from)
        draw_figure(saved, saved.pop("classes"), args.figure or Path("docs/classmodel_figure.png"))
        return
    if args.timing_only:
        if args.timing_repeats < 1:
            parser.error("--timing-only needs --timing-repeats of at least 1")
        if args.threads:
            torch.set_num_threads(args.threads)
        model = deepinside.load_model()
        timing = step_timing(model, args.batch, args.timing_repeats)
        print("Lucent's recipe through the model itself, as Lucent runs it:")
        lucent_itself = lucent_model_cost(model, args.batch, args.timing_repeats)
        write_results(
            args.json,
            "classmodel_step_timing",
            {"batch": args.batch, "step_timing": timing, "lucent_as_it_runs": lucent_itself},
        )
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    targets = CLASSES_100 if args.classes == 100 else CLASSES_DEV
    # A fixed shuffled order, so that the classes done so far (results are
    # written after every chunk) are always a spread sample of the list.
    targets = [targets[i] for i in torch.randperm(len(targets), generator=torch.Generator().manual_seed(0))]
    t_targets = torch.tensor(targets)
    model = deepinside.load_model()
    judge = deepinside.load_model("efficientnet_lite1")
    size = model.preprocessing.input_size[0]
    results: dict[str, object] = {
        "classes": targets,
        "size": size,
        "batch": args.batch,
        "seeds": args.seeds,
        "rows": [],
        "per_seed": [],
    }
    snaps = sorted(
        {s for s in (16, 32, 64, 96, 128, 160, 192, 256, 320, 384, 512) if s < args.lucent_steps}
        | {args.lucent_steps}
    )
    Key = tuple[str, int]  # (method, seed)
    images: dict[Key, list[torch.Tensor]] = {}
    wall: dict[Key, float] = {}
    cpu: dict[Key, float] = {}
    steps_run: dict[Key, int] = {}  # over the classes done
    turns: list[dict[str, object]] = []  # per chunk and seed: the CPU time of each method, in turns

    def add(key: Key, pictures: torch.Tensor, w: float, c: float, steps: int) -> None:
        images.setdefault(key, []).append(pictures)
        wall[key] = wall.get(key, 0.0) + w
        cpu[key] = cpu.get(key, 0.0) + c
        steps_run[key] = steps_run.get(key, 0) + steps

    if args.lucent_steps and args.lucent_timing_steps:
        # Untimed: the process's first run of Lucent's recipe sets up oneDNN's
        # kernels for each of its input sizes, a one-off cost that would weigh
        # on its few timed steps here as it never does over a whole run.
        lucent_timing_turn(model, targets[: args.batch], args.lucent_timing_steps, size, 10**6, args.batch)
    # Methods take turns chunk by chunk, so that load from other users of the
    # machine falls on all of them alike.
    for first in range(0, len(targets), args.batch):
        chunk = targets[first : first + args.batch]
        for seed in args.seeds:
            turn: dict[str, object] = {"classes": len(chunk), "seed": seed, "lucent": [], "presets": {}}
            if args.lucent_steps and args.lucent_timing_steps:
                turn["lucent"].append(
                    lucent_timing_turn(
                        model, chunk, args.lucent_timing_steps, size, seed + first + 1, args.batch
                    )
                )
            for key in args.presets:
                preset = preset_named(key)
                w0, c0 = clocks()
                out = visualize_class(model, chunk, preset=preset, seed=seed, batch_size=args.batch)
                w1, c1 = clocks()
                steps = int(out.log.steps_run.sum())
                add((key, seed), out.images, w1 - w0, c1 - c0, steps)
                turn["presets"][key] = {"cpu_seconds": c1 - c0, "class_steps": steps}
            if args.lucent_steps:
                w0, c0 = clocks()
                shots = lucent_render(
                    model,
                    model.preprocessing,
                    chunk,
                    args.lucent_steps,
                    size,
                    seed + first,
                    snaps,
                    args.batch,
                )
                w1, c1 = clocks()
                for s in snaps:
                    f = s / args.lucent_steps
                    add((f"lucent-recipe@{s}", seed), shots[s], (w1 - w0) * f, (c1 - c0) * f, s * len(chunk))
                turn["lucent"].append({"cpu_seconds": c1 - c0, "class_steps": args.lucent_steps * len(chunk)})
            turns.append(turn)
        done = first + len(chunk)
        per_seed = [
            {
                "method": key.split("@")[0],
                "seed": seed,
                "steps": steps_run[key, seed] / done,
                "early_stop": "@" not in key and preset_named(key).early_stop is not None,
                "classes_done": done,
                "seconds_per_class": wall[key, seed] / done,
                "cpu_seconds_per_class": cpu[key, seed] / done,
                **judged(model, judge, torch.cat(parts), t_targets[:done]),
            }
            for (key, seed), parts in images.items()
        ]
        results["per_seed"] = per_seed
        results["rows"] = rows = over_seeds(per_seed)
        results["timing_turns"] = turns
        if args.lucent_steps:
            results["lucent_rate"] = lucent_rate(turns)
        write_results(args.json, "classmodel_quality", results)  # partial results survive an interruption
        first_seed = {k: torch.cat(v) for (k, seed), v in images.items() if seed == args.seeds[0]}
        if args.save_images:
            torch.save({"classes": targets[:done], **first_seed}, args.save_images)
        shown = [k for k in first_seed if not k.startswith("lucent") or k.endswith(f"@{args.lucent_steps}")]
        seconds = {k: sum(wall[k, seed] for seed in args.seeds) / len(args.seeds) / done for k in shown}
        print(
            f"  {done}/{len(targets)} classes: " + ", ".join(f"{k} {seconds[k]:.1f} s/class" for k in shown),
            flush=True,
        )

    if len(args.seeds) > 1:
        for row in per_seed:
            print(
                f"{row['method']:>14} {row['steps']:.0f} steps, seed {row['seed']}: "
                f"judge top-1 {row['judge_top1']:.0%} (p {row['judge_mean_probability']:.2f})"
            )
        print(f"mean over seeds {', '.join(map(str, args.seeds))} (judge top-1 range in brackets):")
    for row in rows:
        steps = f"{row['steps']:.0f} steps" + (" (mean, early stop)" if row["early_stop"] else "")
        print(
            f"{row['method']:>14} {steps}: own top-1 {row['own_top1']:.0%} "
            f"(p {row['own_mean_probability']:.2f}), judge top-1 {row['judge_top1']:.0%} "
            f"[{row['judge_top1_min']:.0%}-{row['judge_top1_max']:.0%}] "
            f"top-5 {row['judge_top5']:.0%} (p {row['judge_mean_probability']:.2f}), "
            f"{row['seconds_per_class']:.2f} s/class ({row['cpu_seconds_per_class']:.2f} CPU s)",
            flush=True,
        )
    results["against_lucent"] = against_lucent(rows)
    for r in results["against_lucent"]:
        head = f"{r['method']} ({r['steps']:.0f} steps): judge top-1 {r['judge_top1']:.0%}"
        if r["bound_only"]:
            print(
                f"{head}, not reached by Lucent's recipe in {r['lucent_longest_steps']:.0f} steps; "
                f"time < {r['time_fraction']:.2f} of Lucent's"
            )
        else:
            print(
                f"{head} costs Lucent's recipe {r['lucent_steps']:.0f} steps; "
                f"time {r['time_fraction']:.2f} of Lucent's (CPU seconds)"
            )
    if args.lucent_curve:
        timing = results["lucent_rate"]
        print(
            f"Lucent's recipe: {timing['cpu_seconds_per_class_step']:.4f} CPU s a class-step over "
            f"{timing['timed_class_steps']} class-steps in {timing['runs']} runs (single runs: median "
            f"{timing['median']:.4f}, quartiles {timing['quartiles'][0]:.4f}-{timing['quartiles'][1]:.4f}, "
            f"range {timing['min']:.4f}-{timing['max']:.4f}; standard error {timing['standard_error']:.4f})"
        )
        for key, paired in timing["paired_ratio"].items():
            print(
                f"  {key}: CPU a class-step / Lucent's in the same chunk: median {paired['median']:.3f}, "
                f"quartiles {paired['quartiles'][0]:.3f}-{paired['quartiles'][1]:.3f}"
            )
        results["against_lucent_probability"] = against_lucent_probability(
            rows, args.lucent_curve, args.target_probability, timing
        )
        for r in results["against_lucent_probability"]:
            low, high = r["time_fraction_own_at_rate_quartiles"]
            print(
                f"{r['method']}: mean judge P {r['judge_mean_probability']:.3f}, which Lucent's stored curve "
                f"reaches at {r['lucent_steps_own']:.0f} steps: time {r['time_fraction_own']:.3f} "
                f"+- {r['time_fraction_own_standard_error']:.3f} of its (at the single runs' rate quartiles "
                f"{low:.3f}-{high:.3f}); "
                f"for P {r['target_probability']}: {r['lucent_steps_target']:.0f} steps, "
                f"time {r['time_fraction_target']:.3f} +- {r['time_fraction_target_standard_error']:.3f}"
            )
    if args.timing_repeats:
        print("step time against the floor (default preset, batch", args.batch, ")")
        results["step_timing"] = step_timing(model, args.batch, args.timing_repeats)
        if args.lucent_steps:
            print("Lucent's recipe through the model itself, as Lucent runs it:")
            results["lucent_as_it_runs"] = itself = lucent_model_cost(model, args.batch, args.timing_repeats)
            for r in results["against_lucent"]:
                # An estimate: the ratio of a few steps at one batch size, applied to whole runs.
                r["time_fraction_of_lucent_itself"] = r["time_fraction"] / itself["ratio"]
                bound = "< " if r["bound_only"] else ""
                print(
                    f"  {r['method']} ({r['steps']:.0f} steps): "
                    f"{bound}{r['time_fraction_of_lucent_itself']:.2f} "
                    "of the time of Lucent's recipe as Lucent runs it (estimated)",
                    flush=True,
                )
    if args.figure:
        draw_figure(first_seed, targets, args.figure)
    write_results(args.json, "classmodel_quality", results)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
