"""deepinside on a GPU against Captum, in one run and one JSON file.

Gradient maps at batch 64 (deepinside as shipped, its deterministic modes and
each rewrite of its gradient view on and off; Captum with TF32 off and with
PyTorch's defaults), each with its worst pixel against a float64 gradient
computed without cuDNN; SmoothGrad-50 and IG-50 against Captum's NoiseTunnel
and IntegratedGradients; guided backprop and Grad-CAM; the same on a
ResNet-50 (random weights) from timm or torchvision where importable; class
models for 100 classes; localisation and the saliency photo loop in photos/s.
Made to finish in under 5 minutes on one H100/H200 (``--budget``); each part
that fails or runs out of time is recorded as such and the rest still runs.

    python benchmarks/gpu.py --photos DIR                 # on the GPU machine
    python benchmarks/gpu.py --device cpu --quick         # a smoke run (about a minute)

Photos: ``--photos DIR`` (the dev set's images/ folder), else the dev set
where this machine has it, else scikit-image's sample photos. The variants
flip ``deepinside._core.precision``'s table for the length of one
measurement: those are the knobs a result here would change (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from _results import RESULTS, write_results
from PIL import Image

import deepinside
from deepinside._core import precision
from deepinside.visualization import visualize_class
from deepinside.visualization.batch_size import default_batch_size

DEV_IMAGES = ("../shared/data/imagenet-val-loc-dev/images", "/work/shared/data/imagenet-val-loc-dev/images")


# ---------------------------------------------------------------- timing


class Clock:
    """Seconds of a call, synchronising the GPU; and the run's time budget."""

    def __init__(self, device: torch.device, budget: float) -> None:
        self.device, self.deadline = device, time.perf_counter() + budget

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def seconds(self, fn: Callable[[], object], repeats: int) -> float:
        """Median seconds of ``fn`` after one warm-up call."""
        fn()
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    def left(self) -> float:
        return self.deadline - time.perf_counter()


@contextlib.contextmanager
def cudnn(enabled: bool = True, tf32: bool = False) -> Iterator[None]:
    """Global flags for Captum's runs and the float64 truth (deepinside sets its own)."""
    with torch.backends.cudnn.flags(enabled=enabled, allow_tf32=tf32):
        yield


@contextlib.contextmanager
def variant(rewrites: precision.Rewrites | None = None, deterministic: str | None = None) -> Iterator[None]:
    """deepinside with another entry in its per-device table, for one measurement."""
    saved = dict(precision.REWRITES), precision.DETERMINISTIC_CUDA
    try:
        if rewrites is not None:
            for key in ("cpu", "cuda"):
                precision.REWRITES[key] = rewrites
        if deterministic is not None:
            precision.DETERMINISTIC_CUDA = deterministic  # type: ignore[assignment]
        yield
    finally:
        precision.REWRITES.clear()
        precision.REWRITES.update(saved[0])
        precision.DETERMINISTIC_CUDA = saved[1]  # type: ignore[assignment]


def worst_pixel(maps: torch.Tensor, truth: torch.Tensor) -> float:
    """The largest |difference| as a share of each map's maximum, worst image."""
    maps, truth = maps.double().cpu(), truth.double().cpu()
    return float(((maps - truth).abs().flatten(1).amax(1) / truth.abs().flatten(1).amax(1)).max())


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return min(
        float(torch.corrcoef(torch.stack([x.flatten().double(), y.flatten().double()]))[0, 1])
        for x, y in zip(a.cpu(), b.cpu())
    )


# ---------------------------------------------------------------- inputs


def photo_files(folder: Path | None) -> list[Path]:
    for candidate in [folder] if folder else [Path(p) for p in DEV_IMAGES]:
        if candidate is not None and candidate.is_dir():
            files = sorted(p for p in candidate.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
            if files:
                return files
    if folder:
        sys.exit(f"gpu.py: no photos in {folder}")
    return []


def sample_photos(files: list[Path], n: int) -> tuple[list[Image.Image], str]:
    if files:
        return [Image.open(files[i % len(files)]).convert("RGB") for i in range(n)], f"{len(files)} photos"
    try:
        from skimage import data
    except ImportError:
        sys.exit("gpu.py: give --photos DIR (no dev set here and no scikit-image for sample photos)")
    names = ("chelsea", "coffee", "astronaut", "rocket")
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in names]
    return [photos[i % 4] for i in range(n)], "scikit-image's 4 sample photos, repeated"


def float64_gradient(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The paper's maps from a float64 copy, cuDNN off: the reference for every float32 run."""
    net = copy.deepcopy(model).double().eval()
    with cudnn(enabled=False):
        x = x.double().detach().requires_grad_(True)
        (g,) = torch.autograd.grad(net(x).gather(1, targets[:, None]).sum(), x)
    return g.abs().amax(1)


# ---------------------------------------------------------------- parts


def gradient_table(model, x, targets, truth, clock, repeats):  # type: ignore[no-untyped-def]
    """The issue's table: img/s and the worst pixel against float64."""
    from captum.attr import Saliency

    rows = []
    n = len(x)

    def ours(**options: object) -> Callable[[], torch.Tensor]:
        return lambda: deepinside.saliency(model, x, targets, **options)

    def row(name: str, fn: Callable[[], torch.Tensor], **extra: object) -> None:
        maps = fn()
        secs = clock.seconds(fn, repeats)
        rows.append(
            {
                "run": name,
                "images_per_s": n / secs,
                "worst_pixel_vs_float64": worst_pixel(maps[: len(truth)], truth),
                **extra,
            }
        )

    row("deepinside as shipped (cuDNN on, TF32 off)", ours())
    for mode in ("cudnn-off", "cudnn-deterministic"):
        with variant(deterministic=mode):
            first, second = ours(deterministic=True)(), ours(deterministic=True)()
            row(
                f"deepinside deterministic ({mode})",
                ours(deterministic=True),
                bit_for_bit=torch.equal(first, second),
            )
    shipped = precision.rewrites_for(x.device)
    for field in ("fold_batch_norm", "padding_in_convolution", "channels_last"):
        flipped = precision.Rewrites(**{**shipped.__dict__, field: not getattr(shipped, field)})
        with variant(rewrites=flipped):
            row(f"deepinside with {field}={getattr(flipped, field)}", ours())
    with variant(rewrites=precision.Rewrites(False, False, False)):
        row("deepinside, no rewrites (the plain model)", ours())
    captum = Saliency(model)

    def theirs() -> torch.Tensor:
        return captum.attribute(x, target=targets, abs=True).amax(1)

    for tf32 in (False, True):
        with cudnn(tf32=tf32):
            row(f"Captum Saliency, cuDNN on, TF32 {'on (PyTorch default)' if tf32 else 'off'}", theirs)
    captum_tf32_off = rows[-2]["images_per_s"]
    for r in rows:
        r["vs_captum_tf32_off"] = r["images_per_s"] / captum_tf32_off
    return rows


def noisy_methods(model, x, targets, clock, quick):  # type: ignore[no-untyped-def]
    """SmoothGrad and IG with 50 samples/steps against Captum's, TF32 off for both."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    k = 8 if quick else 50
    n = len(x)
    span = float((x.flatten(1).amax(1) - x.flatten(1).amin(1)).mean())
    out = {}
    with cudnn(tf32=False):
        sg = NoiseTunnel(Saliency(model))
        ig = IntegratedGradients(model)
        pairs = {
            f"smoothgrad-{k}": (
                lambda: deepinside.saliency(model, x, targets, "smoothgrad", samples=k, chunk=64),
                lambda: sg.attribute(
                    x,
                    nt_type="smoothgrad",
                    nt_samples=k,
                    nt_samples_batch_size=max(1, 64 // n),
                    stdevs=0.15 * span,
                    target=targets,
                    abs=True,
                ).amax(1),
            ),
            f"integrated-gradients-{k}": (
                lambda: deepinside.saliency(model, x, targets, "integrated-gradients", steps=k, chunk=64),
                lambda: ig.attribute(x, target=targets, n_steps=k, internal_batch_size=64).abs().amax(1),
            ),
        }
        for name, (ours, theirs) in pairs.items():
            if clock.left() < 0:
                out[name] = "skipped: out of time"
                continue
            a, b = ours(), theirs()
            t_ours, t_theirs = clock.seconds(ours, 1), clock.seconds(theirs, 1)
            out[name] = {
                "deepinside_images_per_s": n / t_ours,
                "captum_images_per_s": n / t_theirs,
                "speedup_vs_captum": t_theirs / t_ours,
                # SmoothGrad's noise differs from Captum's: only IG's maps should agree.
                "correlation_with_captum": correlation(a, b),
            }
    return out


def rule_methods(model, x, targets, layer_name, clock, repeats):  # type: ignore[no-untyped-def]
    """Guided backprop and Grad-CAM against Captum's, TF32 off for both."""
    from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam

    n = len(x)
    layer = model.get_submodule(layer_name)
    guided, gradcam = GuidedBackprop(model), LayerGradCam(model, layer)
    pairs = {
        "guided-backprop": (
            lambda: deepinside.saliency(model, x, targets, "guided-backprop"),
            lambda: guided.attribute(x, target=targets).abs().amax(1),
        ),
        "grad-cam": (
            lambda: deepinside.saliency(model, x, targets, "grad-cam", layer=layer_name),
            lambda: LayerAttribution.interpolate(
                F.relu(gradcam.attribute(x, target=targets)), x.shape[-2:], "bilinear"
            )[:, 0],
        ),
    }
    out = {}
    with cudnn(tf32=False):
        for name, (ours, theirs) in pairs.items():
            a, b = ours(), theirs()
            t_ours, t_theirs = clock.seconds(ours, repeats), clock.seconds(theirs, repeats)
            out[name] = {
                "deepinside_images_per_s": n / t_ours,
                "captum_images_per_s": n / t_theirs,
                "speedup_vs_captum": t_theirs / t_ours,
                "worst_pixel_vs_captum": worst_pixel(a, b),
                "correlation_with_captum": correlation(a, b),
            }
    return out


def resnet50(device: torch.device) -> tuple[torch.nn.Module, str] | None:
    try:
        import timm

        return timm.create_model("resnet50", pretrained=False).eval().to(device), "timm resnet50"
    except Exception:  # noqa: BLE001 - timm absent or broken beside this torch: try torchvision
        pass
    try:
        import torchvision

        return torchvision.models.resnet50(weights=None).eval().to(device), "torchvision resnet50"
    except Exception:  # noqa: BLE001
        return None


def class_models(model, device, clock, quick, judge):  # type: ignore[no-untyped-def]
    """100 classes (2 in --quick) with the default preset, as shipped (cuDNN off:
    same seed, same pictures) and with cuDNN on (TF32 off) for comparison."""
    from deepinside._core import gradients
    from deepinside.visualization import render

    classes = list(range(0, 1000, 500 if quick else 10))
    options = {"steps": 8, "early_stop": False} if quick else {}
    batch = default_batch_size(device)
    out: dict[str, object] = {"classes": len(classes), "batch_size": batch}
    for name, scoring in (("as shipped (cuDNN off)", None), ("cuDNN on, TF32 off", gradients.scoring)):
        if clock.left() < 0:
            out[name] = "skipped: out of time"
            continue
        saved = render.scoring
        if scoring is not None:
            render.scoring = scoring  # the engine's fast path instead of the repeatable one
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            clock.sync()
            start = time.perf_counter()
            result = visualize_class(model, classes, device=device, seed=0, batch_size=batch, **options)
            clock.sync()
            took = time.perf_counter() - start
        finally:
            render.scoring = saved
        row = {"seconds": took, "seconds_per_class": took / len(classes)}
        row["steps_per_class"] = float(result.log.steps_run.float().mean())
        if device.type == "cuda":
            row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        if judge is not None:
            with torch.no_grad():
                scores = judge.scores(judge_input(judge, result.images).to(device))
            row["judge_top1"] = float((scores.argmax(1).cpu() == torch.tensor(classes)).float().mean())
        out[name] = row
    return out


def judge_input(judge: deepinside.Classifier, images: torch.Tensor) -> torch.Tensor:
    """The pictures as 8-bit photos, prepared for the judge as any photo is."""
    photos = [
        Image.fromarray((img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())
        for img in images.float()
    ]
    return judge.prepare(photos)[0]


def photo_loops(model, files, photos, device, clock):  # type: ignore[no-untyped-def]
    """Photos/s end to end: localisation (default config, top-1) and the
    saliency photo loop from files (decoding included)."""
    out: dict[str, object] = {}
    n = len(photos)
    model.prepare(photos[:2])
    clock.sync()
    start = time.perf_counter()
    deepinside.localize(model, photos, top_k=1, batch_size=64)
    clock.sync()
    out["localize_photos_per_s"] = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        paths = files[:n] if files else []
        if not paths:
            for i, photo in enumerate(photos):
                photo.save(Path(tmp) / f"{i}.png")
                paths.append(Path(tmp) / f"{i}.png")
        clock.sync()
        start = time.perf_counter()
        done = sum(1 for _ in deepinside.explain_photos(model, paths, batch_size=64))
        clock.sync()
        out["saliency_loop_photos_per_s"] = done / (time.perf_counter() - start)
        out["photos"] = done
    return out


# ---------------------------------------------------------------- run


def part(record: dict[str, object], name: str, clock: Clock, fn: Callable[[], object]) -> None:
    """Run one part into ``record``; a failure or the end of the budget is noted, not fatal."""
    if clock.left() < 0:
        record[name] = "skipped: out of time"
        return
    start = time.perf_counter()
    try:
        record[name] = fn()
    except Exception as err:  # noqa: BLE001 - one part's failure must not lose the others
        record[name] = f"failed: {type(err).__name__}: {err}"
        traceback.print_exc()
    print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="small batches and few samples: a smoke run")
    parser.add_argument("--photos", type=Path, help="a folder of photos (default: the dev set, if here)")
    parser.add_argument("--budget", type=float, default=270, help="seconds before parts are skipped")
    parser.add_argument(
        "--json", type=Path, help="where to write (default benchmarks/results/gpu[_smoke_cpu].json)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu.py: this torch sees no CUDA GPU; for a smoke run: --device cpu --quick")
    out = args.json or RESULTS / ("gpu.json" if device.type == "cuda" else "gpu_smoke_cpu.json")
    batch, repeats = (4, 2) if args.quick else (64, 5)
    clock = Clock(device, args.budget)
    files = photo_files(args.photos)
    photos, source = sample_photos(files, batch)
    results: dict[str, object] = {"quick": args.quick, "batch": batch, "photos": source}

    model = deepinside.load_model().to(device)
    x = model.prepare(photos)[0].to(device)
    targets = model.scores(x).argmax(1)
    layer = f"net.{model.feature_layer}"
    truth = float64_gradient(model, x[:8], targets[:8])
    part(results, "gradient", clock, lambda: gradient_table(model, x, targets, truth, clock, repeats))
    part(results, "smoothgrad_and_ig", clock, lambda: noisy_methods(model, x, targets, clock, args.quick))
    part(
        results,
        "guided_backprop_and_grad_cam",
        clock,
        lambda: rule_methods(model, x, targets, layer, clock, repeats),
    )

    def on_resnet() -> object:
        found = resnet50(device)
        if found is None:
            return "skipped: neither timm nor torchvision imports here"
        net, name = found
        with torch.no_grad():
            t = net(x).argmax(1)
        truth50 = float64_gradient(net, x[:8], t[:8])
        return {
            "model": f"{name}, random weights",
            "gradient": gradient_table(net, x, t, truth50, clock, repeats),
            **rule_methods(net, x, t, "layer4", clock, repeats),
        }

    part(results, "resnet50", clock, on_resnet)
    try:
        judge = deepinside.load_model("efficientnet_lite1").to(device)
    except Exception:  # noqa: BLE001 - the judge's weights are an optional package
        judge = None
    part(results, "class_models", clock, lambda: class_models(model, device, clock, args.quick, judge))
    part(results, "photo_loops", clock, lambda: photo_loops(model, files, photos, device, clock))
    results["seconds"] = args.budget - clock.left()
    write_results(out, "gpu", results, device)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
