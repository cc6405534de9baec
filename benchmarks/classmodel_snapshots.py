"""Class model recipes on the development classes: one long run, snapshotted,
scores many step counts and early-stop rules at once.

Renders the development classes (``range(5, 1000, 10)``, disjoint from the
benchmark's, in a fixed shuffled order) with a variant of the default preset
for ``--steps`` steps, every class to the end; at every snapshot step it
keeps, for each class's picture as it would be returned then, what the
early-stop checks would see (the model's P_c of the picture shrunk to 0.5 or
0.35 and enlarged back, or blurred with sd 2 px, and of the picture itself)
and the judge's verdict (EfficientNet-Lite1 on the 8-bit picture). A class's
picture does not depend on the classes beside it, so an early-stop rule
checked at snapshot steps is scored exactly by taking, for each class, the
first snapshot where its check passes. Pieces (``--part I/N``) append to one
file per variant; ``--score`` prints the tables.

    python benchmarks/classmodel_snapshots.py --variant maco --lr 0.15 --classes 24 --out /tmp/maco.pt
    python benchmarks/classmodel_snapshots.py --score /tmp/maco.pt --json benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _results import write_results

import deepinside
from deepinside._core.allocator import keep_freed_memory
from deepinside.visualization import param, presets, visualize_class
from deepinside.visualization.optim import Adam

DEV = list(range(5, 1000, 10))
SNAPSHOTS = tuple(range(64, 321, 16))


def dev_classes(count: int) -> list[int]:
    order = torch.randperm(len(DEV), generator=torch.Generator().manual_seed(0))
    return [DEV[i] for i in order[:count]]


@dataclasses.dataclass(frozen=True)
class LateDecay(Adam):
    """Adam at a constant ``lr`` until step ``decay_from``, then straight down
    to ``final * lr`` at step ``until`` (by the step, whichever class)."""

    decay_from: int = 160
    until: int = 320
    final: float = 0.25

    def step(self, params, grads, state, step, steps, moving=None) -> None:  # type: ignore[no-untyped-def]
        t = min(1.0, max(0.0, (step - self.decay_from) / (self.until - self.decay_from)))
        now = Adam(self.lr * (1 - (1 - self.final) * t), self.betas, self.eps)
        now.step(params, grads, state, step, steps, moving)


def variant(args: argparse.Namespace) -> presets.Preset:
    base = presets.default()
    prm = param.maco(contrast=args.contrast) if args.variant == "maco" else base.param
    return dataclasses.replace(
        base,
        param=prm,
        optimizer=Adam(args.lr)
        if args.lr_decay_from is None
        else LateDecay(args.lr, decay_from=args.lr_decay_from, until=args.steps, final=args.lr_final),
        steps=args.steps,
        early_stop=None,
        average=args.average,
        average_from=args.average_from,
        octaves=windows(args.windows),
        late_octaves=windows(args.late_windows) if args.late_windows else (),
        late_from=args.late_from,
    )


def windows(text: str) -> tuple[tuple[float, float], ...]:
    return tuple((float(w), float(f)) for w, f in (o.split(":") for o in text.split(",")))


def blurred(pixels: torch.Tensor, how: str) -> torch.Tensor:
    if how.startswith("flip"):  # a transform the loop never applies, then the rest of the check
        flipped = pixels.flip(-1)
        return flipped if how == "flip" else blurred(flipped, how.removeprefix("flip"))
    if how == "blur2":
        x = torch.arange(-6, 7, dtype=pixels.dtype)
        k = torch.exp(-(x**2) / 8)
        k = k / k.sum()
        p = F.pad(pixels, (6, 6, 6, 6), mode="reflect")
        p = F.conv2d(p, k.view(1, 1, 1, -1).expand(3, 1, 1, 13), groups=3)
        return F.conv2d(p, k.view(1, 1, -1, 1).expand(3, 1, 13, 1), groups=3)
    scale = float(how.removeprefix("shrink"))
    small = F.interpolate(pixels, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=pixels.shape[-2:], mode="bilinear", align_corners=False)


CHECKS = ("plain", "shrink0.5", "shrink0.35", "blur2", "shrink0.25", "flip", "flipshrink0.35")


@torch.no_grad()
def observe(model, judge, pictures: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for how in CHECKS:
        x = pictures if how == "plain" else blurred(pictures, how)
        out[how] = model(model.preprocessing.normalize(x)).softmax(1).gather(1, targets[:, None])[:, 0]
    q = (pictures.clamp(0, 1) * 255).round() / 255
    q = F.interpolate(q, size=judge.preprocessing.input_size, mode="bilinear", antialias=True)
    probs = judge(judge.preprocessing.normalize(q)).softmax(1)
    out["judge_p"] = probs.gather(1, targets[:, None])[:, 0]
    out["judge_top1"] = (probs.argmax(1) == targets).float()
    return out


def render(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    model, judge = deepinside.load_model(), deepinside.load_model("efficientnet_lite1")
    preset = variant(args)
    part, parts = (int(v) for v in args.part.split("/"))
    classes = dev_classes(args.classes)
    n = len(classes)
    mine = classes[(part - 1) * n // parts : part * n // parts]
    saved = (
        torch.load(args.out)
        if args.out.exists()
        else {
            "classes": [],
            "rows": {},
            "cpu": 0.0,
            "args": {k: v for k, v in vars(args).items() if not isinstance(v, Path)},
        }
    )
    for first in range(0, len(mine), 8):
        chunk = [c for c in mine[first : first + 8] if c not in saved["classes"]]
        if not chunk:
            continue
        t = torch.tensor(chunk)
        seen: dict[int, dict[str, torch.Tensor]] = {}
        aside = [0.0]

        kept: dict[int, torch.Tensor] = {}

        def on_step(report, t=t, seen=seen, aside=aside, kept=kept) -> None:
            if report.step in SNAPSHOTS:
                c0 = time.process_time()
                pictures = report.pictures()
                seen[report.step] = observe(model, judge, pictures, t)
                if args.pictures:
                    kept[report.step] = (pictures.clamp(0, 1) * 255).round().to(torch.uint8)
                aside[0] += time.process_time() - c0

        c0 = time.process_time()
        visualize_class(model, chunk, preset=preset, seed=args.seed, batch_size=8, on_step=on_step)
        saved["cpu"] += time.process_time() - c0 - aside[0]
        saved["classes"] += chunk
        for s, obs in seen.items():
            row = saved["rows"].setdefault(s, {})
            for k, v in obs.items():
                row[k] = torch.cat([row.get(k, torch.empty(0)), v])
        torch.save(saved, args.out)
        if args.pictures:
            shots = torch.load(args.pictures) if args.pictures.exists() else {"classes": [], "pictures": {}}
            shots["classes"] += chunk
            for s, pictures in kept.items():
                shots["pictures"][s] = torch.cat([shots["pictures"].get(s, pictures[:0]), pictures])
            torch.save(shots, args.pictures)
        last = saved["rows"][max(seen)]
        print(
            f"{len(saved['classes'])} classes: judge P at {max(seen)} {float(last['judge_p'].mean()):.3f}, "
            f"{saved['cpu'] / len(saved['classes']) / args.steps * 1000:.1f} CPU ms a class-step",
            flush=True,
        )


def score(path: Path, cpu_per_step: float | None) -> dict[str, object]:
    """Print and return the judge's verdict at each snapshot and under each stop rule."""
    saved = torch.load(path)
    rows, n = saved["rows"], len(saved["classes"])
    steps = saved["args"]["steps"]
    per_step = cpu_per_step or saved["cpu"] / n / steps
    print(f"{path.name}: {n} classes, {saved['cpu'] / n / steps * 1000:.1f} CPU ms a class-step")
    out: dict[str, object] = {
        "variant": saved["args"],
        "classes": saved["classes"],
        "snapshots": [],
        "rules": [],
    }
    for s in sorted(rows):
        r = rows[s]
        top1, p = float(r["judge_top1"].mean()), float(r["judge_p"].mean())
        print(f"  {s:3d} steps: judge top-1 {top1:.0%} P {p:.3f}")
        out["snapshots"].append({"steps": s, "judge_top1": top1, "judge_mean_probability": p})
    print("  rule (check >= p, first, every, cap): judge top-1, P, mean steps, est CPU s, own-converged")
    for check in CHECKS[1:]:
        if check not in rows[min(rows)]:  # a run from before this check was kept
            continue
        for p in (0.9, 0.95, 0.98, 0.99):
            for first, every in ((96, 32), (128, 32), (96, 16)):
                for cap in (192, 224, 256, 288, 320):
                    if cap > steps:
                        continue
                    due = [s for s in sorted(rows) if s >= first and (s - first) % every == 0 and s < cap]
                    stop = torch.full((n,), cap)
                    for s in reversed(due):
                        # As the render loop: the picture itself must pass too.
                        passed = (rows[s][check] >= p) & (rows[s]["plain"] >= p)
                        stop = torch.where(passed, torch.tensor(s), stop)
                    pick = {
                        k: torch.stack([rows[int(st)][k][i] for i, st in enumerate(stop)])
                        for k in ("judge_p", "judge_top1", "plain")
                    }
                    mean_steps = float(stop.float().mean())
                    out["rules"].append(
                        {
                            "check": check,
                            "probability": p,
                            "first": first,
                            "every": every,
                            "cap": cap,
                            "judge_top1": float(pick["judge_top1"].mean()),
                            "judge_mean_probability": float(pick["judge_p"].mean()),
                            "mean_steps": mean_steps,
                        }
                    )
                    print(
                        f"  {check:>10} >= {p:.2f}, {first}/{every}, cap {cap}: "
                        f"{float(pick['judge_top1'].mean()):.0%} P {float(pick['judge_p'].mean()):.3f} "
                        f"steps {mean_steps:.0f} CPU {mean_steps * per_step:.2f} "
                        f"conv {float((pick['plain'] >= p).float().mean()):.0%}"
                    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("default", "maco"), default="default")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--contrast", type=float, default=1.0)
    parser.add_argument("--lr-decay-from", type=int, help="decay the learning rate straight from this step")
    parser.add_argument("--lr-final", type=float, default=0.25, help="the last step's share of --lr")
    parser.add_argument("--average", type=float, default=presets.DEFAULT_AVERAGE)
    parser.add_argument("--average-from", type=int, default=48)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument(
        "--windows", default="0.55:1,0.7:1,0.85:1,1.0:1", help="window:share,... in turn (the default's)"
    )
    parser.add_argument("--late-windows", help="window:share,... in turn from --late-from on")
    parser.add_argument("--late-from", type=int, default=0)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--part", default="1/1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pictures", type=Path, help="also keep every snapshot's 8-bit pictures here")
    parser.add_argument("--score", type=Path, nargs="*")
    parser.add_argument("--json", type=Path, help="with --score: write the tables here")
    parser.add_argument("--cpu-per-step", type=float, help="CPU s a class-step for the estimates")
    args = parser.parse_args()
    if args.score:
        scored = [score(path, args.cpu_per_step) for path in args.score]
        if args.json:
            write_results(args.json, "classmodel_snapshots", scored)
        return
    render(args)


if __name__ == "__main__":
    main()
