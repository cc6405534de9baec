"""The model matrix: every method on every model family this machine can
build, each cell checked against an answer computed without deepinside.

A cell passes when the method runs on the model as it is, gives finite
values, leaves the caller's model exactly as it was (parameters, buffers,
flags, hooks, gradients), the gradient view's scores equal the model's, and
the map equals its oracle: plain autograd for the gradient, gradient x input,
integrated gradients (the same Gauss-Legendre nodes) and SmoothGrad (the same
seeded noise); Captum for guided backprop, DeconvNet, Grad-CAM
(``LayerGradCam``, ``relu_attributions=True``, bilinear upsampling) and guided
Grad-CAM where Captum's rule is the same (every rectifier an ``nn.ReLU``
module; with no rectifier at all, the rule methods equal the gradient). A
cell that cannot work says why in one line.

    python benchmarks/model_matrix.py            # writes results/model_matrix.json and docs/models.md's table
    python benchmarks/model_matrix.py --check    # exit 1 if docs/models.md's table is not the current one

The models: ``tests/models/zoo.py`` (hand-written cases, random-initialised
Hugging Face classifiers); ``--timm`` and ``--torchvision`` add those
libraries' classifiers (random weights) where they import (the GPU machine).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import deepinside  # noqa: E402
from deepinside import DeepInsideError  # noqa: E402
from deepinside._core.gradients import scoring  # noqa: E402
from deepinside._core.rules import backward_rule  # noqa: E402
from deepinside.attribution import METHODS  # noqa: E402
from deepinside.models import select_output  # noqa: E402
from deepinside.models.classifier import feature_layer_path  # noqa: E402
from tests.models import oracles, zoo  # noqa: E402

DOC = ROOT / "docs" / "models.md"
BEGIN, END = "<!-- model matrix: begin -->", "<!-- model matrix: end -->"

#: Cheap settings, the same for deepinside and the oracle.
OPTIONS: dict[str, dict[str, object]] = {
    "smoothgrad": {"samples": 4, "noise": 0.15, "seed": 3},
    "integrated-gradients": {"steps": 8},
}
TOLERANCE = 2e-3  # max |ours - oracle| / max |oracle|: float32 round-off through a small net


@dataclass(frozen=True)
class Cell:
    family: str
    method: str
    status: str  # "pass", "fail" or "n/a"
    note: str = ""

    @property
    def text(self) -> str:
        return self.status if not self.note else f"{self.status}: {self.note}"


def families(
    timm: bool = False, torchvision: bool = False
) -> dict[str, tuple[Callable[[], nn.Module], int, int]]:
    found = {**zoo.HAND_WRITTEN, **zoo.hugging_face()}
    if timm:
        found.update(
            _library_models("timm", ["resnet18", "vit_tiny_patch16_224", "convnext_atto", "efficientnet_b0"])
        )
    if torchvision:
        found.update(_library_models("torchvision", ["vgg11", "resnet18", "mobilenet_v3_small", "vit_b_16"]))
    return found


def _library_models(library: str, names: list[str]) -> dict[str, tuple[Callable[[], nn.Module], int, int]]:
    try:
        module = __import__(library + (".models" if library == "torchvision" else ""), fromlist=["x"])
    except Exception:  # noqa: BLE001 - not importable beside this torch: no rows
        return {}
    make = module.create_model if library == "timm" else lambda n: getattr(module, n)(weights=None)
    return {f"{library} {n}": ((lambda n=n: make(n).eval()), 224, 3) for n in names}


def run_cell(build: Callable[[], nn.Module], size: int, channels: int, family: str, method: str) -> Cell:
    torch.manual_seed(0)
    net = build().eval()
    x = torch.randn(2, channels, size, size)
    before = _snapshot(net)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = deepinside.attribute(net, x, [0, 1], method, **OPTIONS.get(method, {}))
            after = _snapshot(net)
            expected, why_not = _oracle(net, x, method)
            view_ok = _view_scores_match(net, x)
    except DeepInsideError as err:
        return Cell(family, method, "n/a", str(err))
    except Exception as err:  # noqa: BLE001 - a crash is what the matrix is for
        return Cell(family, method, "fail", f"{type(err).__name__}: {str(err).splitlines()[0]}")
    problems = []
    if not torch.isfinite(found.raw).all():
        problems.append("non-finite values")
    if after != before:
        problems.append("the caller's model changed")
    if not view_ok:
        problems.append("the gradient view's scores differ from the model's")
    if expected is not None:
        gap = float((found.raw - expected.detach()).abs().max() / expected.abs().max().clamp_min(1e-12))
        if gap > TOLERANCE:
            problems.append(f"differs from its oracle by {gap:.1e} of the maximum")
    if problems:
        return Cell(family, method, "fail", "; ".join(problems))
    return Cell(family, method, "pass", why_not)


def _snapshot(net: nn.Module) -> tuple[object, ...]:
    """What a call must leave as it was: values, flags, hooks, gradients."""
    state = tuple((k, v.detach().clone().numpy().tobytes()) for k, v in net.state_dict().items())
    flags = tuple((m.training, len(m._forward_hooks), len(m._backward_hooks)) for m in net.modules())
    grads = tuple((p.requires_grad, p.grad is None) for p in net.parameters())
    attention = getattr(getattr(net, "config", None), "_attn_implementation", None)
    return state, flags, grads, attention


def _view_scores_match(net: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        expected = _scores(net, x)
    with scoring(net, x) as (score, layout), torch.no_grad():
        got = score(layout(x))
    return bool(torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max())))


def _scores(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The scores deepinside explains: the output's logits, before a last sigmoid."""
    out = select_output(net(x))
    return torch.logit(out) if isinstance(net, zoo.MultiLabel) else out


def _gradient(net: nn.Module, x: torch.Tensor, targets: list[int]) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_scores(net, x)[torch.arange(len(x)), targets].sum(), x)
    return g


def _oracle(net: nn.Module, x: torch.Tensor, method: str) -> tuple[torch.Tensor | None, str]:
    """The map computed without deepinside, or None and why there is none."""
    targets = [0, 1]
    if method == "gradient":
        return _gradient(net, x, targets), ""
    if method == "gradient-x-input":
        return _gradient(net, x, targets) * x, ""
    if method == "integrated-gradients":
        nodes, weights = np.polynomial.legendre.leggauss(int(OPTIONS[method]["steps"]))
        total = sum(w / 2 * _gradient(net, (a + 1) / 2 * x, targets) for a, w in zip(nodes, weights))
        return x * total, ""
    if method == "smoothgrad":
        o = OPTIONS[method]
        generator = torch.Generator().manual_seed(int(o["seed"]))
        span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
        draws = [torch.randn(x.shape[1:], generator=generator) for _ in range(int(o["samples"]))]
        return sum(_gradient(net, x + d * float(o["noise"]) * span, targets) for d in draws) / len(draws), ""
    if method in ("guided-backprop", "deconvnet", "guided-grad-cam"):
        rectifiers, relu_modules = _rectifier_calls(net, x)
        if rectifiers != relu_modules:  # (with none at all, both rules are the plain gradient)
            return (
                None,
                "runs; no oracle: Captum's rule acts on nn.ReLU modules, this model has other rectifiers",
            )
    return _captum(net, x, method, targets)


def _rectifier_calls(net: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """Rectifier calls deepinside's rules see in a forward pass, and calls of nn.ReLU modules."""
    calls = []
    handles = [
        m.register_forward_hook(lambda *_: calls.append(1)) for m in net.modules() if type(m) is nn.ReLU
    ]
    try:
        with backward_rule("guided") as mode:  # (rules act on passes that record gradients)
            net(x.clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    return mode.count, len(calls)


def _captum(net: nn.Module, x: torch.Tensor, method: str, targets: list[int]) -> tuple[torch.Tensor, str]:
    from captum.attr import Deconvolution, GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam

    forward = _CaptumForward(net)
    if method in ("attention-rollout", "attention-relevance"):
        # (The method has refused every model that is not a ViT-style transformer.)
        return oracles.attention_map(net, x, targets, method), "by hand on eager attention"
    if method in ("guided-backprop", "deconvnet"):
        rule = GuidedBackprop if method == "guided-backprop" else Deconvolution
        return rule(forward).attribute(x.clone(), target=targets), ""
    layer = net.get_submodule(feature_layer_path(net, None, x))
    if _gives_tokens(net, layer, x):  # Captum's Grad-CAM takes (B, K, h, w) maps only
        cam = oracles.token_grad_cam(net, x, targets, layer)
        if method == "grad-cam":
            return cam, "by hand on the token grid"
        return GuidedBackprop(forward).attribute(x.clone(), target=targets) * cam, "by hand on the token grid"
    if method == "grad-cam":
        cam = LayerGradCam(forward, layer).attribute(x.clone(), target=targets, relu_attributions=True)
        return LayerAttribution.interpolate(cam.detach(), x.shape[-2:], "bilinear"), ""
    return GuidedGradCam(forward, layer).attribute(x.clone(), target=targets, interpolate_mode="bilinear"), ""


def _gives_tokens(net: nn.Module, layer: nn.Module, x: torch.Tensor) -> bool:
    shapes: list[int] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: shapes.append(out.dim()))
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return shapes[0] == 3


class _CaptumForward(nn.Module):
    """The scores as a module (Captum's rules hook its submodules, the model's own)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _scores(self.net, x)


def matrix(models: dict[str, tuple[Callable[[], nn.Module], int, int]]) -> list[Cell]:
    return [run_cell(*spec, family, method) for family, spec in models.items() for method in METHODS]


def table(cells: list[Cell]) -> str:
    methods = list(dict.fromkeys(c.method for c in cells))
    rows = ["| model | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for family in dict.fromkeys(c.family for c in cells):
        by_method = {c.method: c for c in cells if c.family == family}
        rows.append(f"| {family} | " + " | ".join(_short(by_method[m]) for m in methods) + " |")
    notes = sorted({c.note for c in cells if c.note})
    legend = [f"{i + 1}. {n}" for i, n in enumerate(notes)]
    marked = "\n".join(rows)
    for i, n in enumerate(notes):
        marked = marked.replace(f"<<{n}>>", f"[{i + 1}]")
    return marked + "\n\n" + "\n".join(legend)


def _short(cell: Cell) -> str:
    mark = {"pass": "pass", "n/a": "n/a", "fail": "**FAIL**"}[cell.status]
    return f"{mark} <<{cell.note}>>" if cell.note else mark


def _with_table(doc: str, body: str) -> str:
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare docs/models.md's table with a new run")
    parser.add_argument("--timm", action="store_true", help="add timm's classifiers (random weights)")
    parser.add_argument(
        "--torchvision", action="store_true", help="add torchvision's classifiers (random weights)"
    )
    parser.add_argument("--json", default=None, help="result file (default: results/model_matrix.json)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    cells = matrix(families(args.timm, args.torchvision))
    body = table(cells)
    print(body)
    if args.check:
        return 0 if _with_table(DOC.read_text(), body) == DOC.read_text() else 1
    from _results import RESULTS, write_results

    rows = [{"model": c.family, "method": c.method, "status": c.status, "note": c.note} for c in cells]
    write_results(
        Path(args.json) if args.json else RESULTS / "model_matrix.json", "model_matrix", {"cells": rows}
    )
    if not (args.timm or args.torchvision):
        DOC.write_text(_with_table(DOC.read_text(), body))
    return 1 if any(c.status == "fail" for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
