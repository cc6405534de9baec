"""The attribution methods that grew out of the paper, one small class each.

Every method maps a batch of preprocessed images and one target class per
image to a raw attribution ``(N, C, H, W)`` on the input (C = 3, or 1 for
Grad-CAM and the attention methods; guided Grad-CAM, a product with guided
backprop, has 3) and the class scores ``(N, classes)``.

A method declares itself once: its ``name``, what it ``needs`` of a model,
and its options as dataclass fields made with :func:`option` (help, range,
choices, a cheap setting for tests). The command line's flags, the web
page's controls and the tests' settings are derived from that;
:func:`method_from_name` builds one from a user's words. Adding a method is
one class here, registered in :data:`METHODS`, and one test file.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._core.attention import explicit_attention, self_attention_calls
from .._core.gradients import capturing, compiled_part, input_gradient, require_eager, scoring
from .._core.rules import Rule, max_pool_counter
from .._core.scores import ScoreTarget, Targets, repeated, target_scores, top_classes
from ..errors import DeepInsideError, check_count
from ..models.classifier import Classifier, feature_layer_path, user_layer_name
from ..models.layers import as_feature_map, token_grid
from .attention import HeadFusion, check_self_attention, relevance, rollout, self_attention

#: Rows per pass for methods that evaluate many perturbed copies of an image.
DEFAULT_CHUNK = 16


@dataclass(frozen=True)
class Option:
    """What a user may set on a method: one line of help, the value's kind,
    its range or choices, a cheap setting (tests, warm-ups), and its command
    line flag (None: Python only)."""

    help: str
    kind: type = str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    cheap: object = None
    flag: str | None = ""  # "": --the-field-name


def option(
    default: object,
    help: str,
    *,
    kind: type = str,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    cheap: object = None,
    flag: str | None = "",
) -> Any:
    """A method's option: a dataclass field carrying its :class:`Option`
    (typed Any, as ``dataclasses.field`` is, so that it fits the field's type)."""
    declared = Option(help, kind, low, high, choices, cheap, flag)
    return dataclasses.field(default=default, metadata={"option": declared})


def options_of(method: type[Method] | Method) -> dict[str, tuple[object, Option]]:
    """A method's options: field name -> (default, declaration)."""
    return {
        f.name: (f.default, f.metadata["option"])
        for f in dataclasses.fields(method)
        if "option" in f.metadata
    }


def flag_of(name: str, declared: Option) -> str | None:
    """The command line flag of option ``name``, or None where it has none."""
    if declared.flag is None:
        return None
    return declared.flag or "--" + name.replace("_", "-")


def cheap_options(method: type[Method] | Method) -> dict[str, object]:
    """The cheap settings a method declares (few samples, few steps)."""
    return {n: d.cheap for n, (_, d) in options_of(method).items() if d.cheap is not None}


@dataclass(frozen=True)
class MethodResult:
    raw: torch.Tensor  # (N, C, H, W)
    scores: torch.Tensor  # (N, classes) at the images themselves (the model's output)
    targets: torch.Tensor  # (N,); -1 where a score target was explained
    completeness_error: torch.Tensor | None = None  # (N,), integrated gradients only


@dataclass(frozen=True)
class Method:
    """Base of all methods: a name, what it needs, and a ``compute``."""

    name: ClassVar[str] = ""
    #: What the method needs of a model, beyond a gradient: "feature layer"
    #: (a spatial map or token grid), "attention" (a ViT's self-attention),
    #: "rectifier rules" (eager Python code its backward rules can reach).
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Whether the map depends on the class explained (attention rollout's does not).
    class_specific: ClassVar[bool] = True

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        """Explain each image of ``x`` for its target: a class index ``(N,)``,
        a :class:`~deepinside._core.scores.ScoreTarget`, or None (top class)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise :class:`DeepInsideError` for an option out of range."""

    def repeated(self, batch: int, k: int) -> Method:
        """This method for the images repeated ``k`` times each (``repeat_interleave``),
        as when each of ``batch`` images is explained for ``k`` classes."""
        return self

    def compute_classes(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> MethodResult:
        """Each image of ``x`` ``(B, 3, H, W)`` explained for each of its classes
        ``targets`` ``(B, K)``: rows image-major ``(B*K, ...)``. By default each
        image is repeated K times (per-image options, such as an integrated-
        gradients baseline, repeat with it); a method whose K maps share one
        forward pass overrides this."""
        batch, k = targets.shape
        return self.repeated(batch, k).compute(model, x.repeat_interleave(k, dim=0), targets.reshape(-1))


@dataclass(frozen=True)
class _BackwardRuleMethod(Method):
    """dS_c/dI back-propagated with ``rule`` at every rectifier (see ``deepinside._core.rules``)."""

    rule: ClassVar[Rule] = "gradient"
    chunk: int | None = None

    def check(self) -> None:
        if self.chunk is not None:
            check_count("chunk", self.chunk)

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        if self.rule != "gradient":
            require_eager(model, self.name, "rectifier rules")
        return MethodResult(*input_gradient(model, x, targets, self.rule, self.chunk))


@dataclass(frozen=True)
class Gradient(_BackwardRuleMethod):
    """The paper's saliency: dS_c/dI (Simonyan et al. 2013)."""

    name: ClassVar[str] = "gradient"


@dataclass(frozen=True)
class DeconvNet(_BackwardRuleMethod):
    """Zeiler & Fergus 2014 as the paper's section 4 relates it: rectifiers pass
    the positive part of the signal coming back."""

    name: ClassVar[str] = "deconvnet"
    needs: ClassVar[frozenset[str]] = frozenset({"rectifier rules"})
    rule: ClassVar[Rule] = "deconvnet"

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        with max_pool_counter() as pools:
            result = super().compute(model, x, targets)
        if pools.count == 0:
            warnings.warn(NO_MAX_POOLING, stacklevel=4)
        return result


#: Said when DeconvNet runs on a network without max pooling.
NO_MAX_POOLING = (
    "deconvnet on a network without max pooling: its map hardly depends on the photo "
    "(on the built-in models it is the same for every photo); see docs/methods.md"
)


@dataclass(frozen=True)
class GuidedBackprop(_BackwardRuleMethod):
    """Springenberg et al. 2015: rectifiers pass signal only where both the
    forward input and the returning signal are positive."""

    name: ClassVar[str] = "guided-backprop"
    needs: ClassVar[frozenset[str]] = frozenset({"rectifier rules"})
    rule: ClassVar[Rule] = "guided"


@dataclass(frozen=True)
class GradientXInput(Method):
    """Shrikumar et al. 2016: the input times its gradient."""

    name: ClassVar[str] = "gradient-x-input"

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        grad, scores, used = input_gradient(model, x, targets)
        return MethodResult(grad * x, scores, used)


def _scores_at(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """The model's scores ``(N, classes)`` at the images, without gradients."""
    with scoring(model, x) as (score, layout), torch.no_grad():
        return torch.cat([score(layout(x[i : i + chunk])) for i in range(0, x.shape[0], chunk)])


def _explained(targets: Targets, batch: int, device: torch.device) -> torch.Tensor:
    """The class explained per image: the targets, or -1 for a score target."""
    if isinstance(targets, torch.Tensor):
        return targets
    return torch.full((batch,), -1, dtype=torch.long, device=device)


@dataclass(frozen=True)
class SmoothGrad(Method):
    """Smilkov et al. 2017: the gradient averaged over noisy copies.

    ``noise`` is the noise's standard deviation as a fraction of each image's
    value range; ``variant`` ``"mean"`` (SmoothGrad), ``"squared"``
    (SmoothGrad-squared: the mean of squared gradients) or ``"vargrad"`` (their
    variance). ``seed`` fixes the noise, so maps are reproducible.
    """

    name: ClassVar[str] = "smoothgrad"
    samples: int = option(50, "noisy copies", kind=int, low=1, high=200, cheap=2)
    noise: float = option(0.15, "noise std as a fraction of the input range", kind=float, low=0.0, high=0.5)
    variant: Literal["mean", "squared", "vargrad"] = option(
        "mean", "mean (SmoothGrad), squared or vargrad", choices=("mean", "squared", "vargrad")
    )
    seed: int = option(0, "the noise's seed", kind=int, flag=None)
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        check_count("samples", self.samples)
        check_count("chunk", self.chunk)
        if not 0 <= self.noise <= 10:
            raise DeepInsideError(
                f"smoothgrad noise is a fraction of the input range (e.g. 0.15), got {self.noise}"
            )
        if self.variant not in ("mean", "squared", "vargrad"):
            raise DeepInsideError(
                f"smoothgrad variant must be mean, squared or vargrad, got {self.variant!r}"
            )

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        scores = _scores_at(model, x, self.chunk)
        targets = top_classes(scores, targets)
        generator = torch.Generator().manual_seed(self.seed)
        span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
        shape = x.shape[1:]
        total = torch.zeros_like(x)
        total_sq = torch.zeros_like(x)
        # Each image's samples go through in chunks of rows, so memory stays
        # bounded whatever the sample count.
        rows_per_image = max(1, self.chunk // max(1, x.shape[0]))
        for start in range(0, self.samples, rows_per_image):
            n = min(rows_per_image, self.samples - start)
            # Sample s is the s-th draw of one (C, H, W) noise from the seed, for
            # every image: an image's map depends on neither the chunk size nor
            # the batch it is in (how many values one randn call draws changes
            # the stream). For one image it is Captum's stream when C*H*W % 16 == 0.
            noise = torch.stack([torch.randn(shape, generator=generator) for _ in range(n)])
            noise = noise.to(x.device, x.dtype)[:, None]
            noisy = (x[None] + noise * (self.noise * span)[None]).reshape(-1, *shape)
            grad, _, _ = input_gradient(model, noisy, repeated(targets, x.shape[0], n), chunk=self.chunk)
            for g in grad.view(n, *x.shape):  # sample by sample: the same sums whatever the chunk
                total += g
                total_sq += g.square()
        mean, mean_sq = total / self.samples, total_sq / self.samples
        raw = {"mean": mean, "squared": mean_sq, "vargrad": mean_sq - mean.square()}[self.variant]
        return MethodResult(raw, scores, _explained(targets, x.shape[0], x.device))


@dataclass(frozen=True)
class IntegratedGradients(Method):
    """Sundararajan et al. 2017: ``(x - x') * mean of dS/dI along the straight
    path from the baseline x' to x``, by Gauss-Legendre quadrature (as Captum's
    default) or the trapezoid rule. ``baseline`` is None (zeros: the model's
    mean input), a number, or a tensor ``(C, H, W)``, ``(1, C, H, W)`` or ``(N, C, H, W)``.
    The result carries the completeness error ``|sum(attr) - (S(x) - S(x'))|``.
    """

    name: ClassVar[str] = "integrated-gradients"
    steps: int = option(50, "steps", kind=int, low=1, high=200, cheap=2, flag="--ig-steps")
    baseline: float | torch.Tensor | None = option(
        None, "constant baseline in the model's input space (default 0: the mean colour)", kind=float
    )
    rule: Literal["gausslegendre", "trapezoid"] = option(
        "gausslegendre", "quadrature", choices=("gausslegendre", "trapezoid"), flag=None
    )
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        check_count("steps", self.steps)
        check_count("chunk", self.chunk)
        if self.rule not in ("gausslegendre", "trapezoid"):
            raise DeepInsideError(f"integration rule must be gausslegendre or trapezoid, got {self.rule!r}")
        if self.rule == "trapezoid" and self.steps < 2:
            raise DeepInsideError("the trapezoid rule needs at least 2 steps")

    def repeated(self, batch: int, k: int) -> Method:
        b = self.baseline
        if isinstance(b, torch.Tensor) and b.dim() == 4 and b.shape[0] == batch:
            return dataclasses.replace(self, baseline=b.repeat_interleave(k, dim=0))
        return self

    def _baseline(self, x: torch.Tensor) -> torch.Tensor:
        b = self.baseline
        if b is None or isinstance(b, (int, float)):
            return torch.full_like(x, float(b or 0.0))
        b = b.to(x.device, x.dtype)
        if b.shape == x.shape[1:] or (b.dim() == 4 and b.shape[0] == 1 and b.shape[1:] == x.shape[1:]):
            return b.expand_as(x)
        if b.shape == x.shape:
            return b
        c, h, w = x.shape[1:]
        raise DeepInsideError(
            f"baseline of shape {tuple(b.shape)} does not fit images of shape {tuple(x.shape)}: "
            f"give ({c}, {h}, {w}), (1, {c}, {h}, {w}), ({x.shape[0]}, {c}, {h}, {w}) or a number"
        )

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        if self.rule == "trapezoid":
            alphas = np.linspace(0.0, 1.0, self.steps)
            weights = np.full(self.steps, 1.0 / (self.steps - 1))
            weights[[0, -1]] /= 2
            return alphas, weights
        nodes, weights = np.polynomial.legendre.leggauss(self.steps)
        return (nodes + 1) / 2, weights / 2

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        baseline = self._baseline(x)
        both = _scores_at(model, torch.cat([x, baseline]), self.chunk)
        scores, base_scores = both[: len(x)], both[len(x) :]
        targets = top_classes(scores, targets)
        alphas, weights = self._nodes()
        total = torch.zeros_like(x)
        rows_per_image = max(1, self.chunk // max(1, x.shape[0]))
        for start in range(0, self.steps, rows_per_image):
            a = torch.tensor(alphas[start : start + rows_per_image], dtype=x.dtype, device=x.device)
            w = torch.tensor(weights[start : start + rows_per_image], dtype=x.dtype, device=x.device)
            path = baseline[None] + a.view(-1, 1, 1, 1, 1) * (x - baseline)[None]
            grad, _, _ = input_gradient(
                model, path.reshape(-1, *x.shape[1:]), repeated(targets, len(x), len(a)), chunk=self.chunk
            )
            total += (grad.view(len(a), *x.shape) * w.view(-1, 1, 1, 1, 1)).sum(0)
        raw = (x - baseline) * total
        (at_x, used), (at_baseline, _) = target_scores(scores, targets), target_scores(base_scores, targets)
        error = (raw.flatten(1).sum(1) - (at_x - at_baseline)).abs()
        return MethodResult(raw, scores, used, error)


LAYER_HELP = "the layer to read, as your model names it (default: the feature layer)"


@dataclass(frozen=True)
class GradCam(Method):
    """Selvaraju et al. 2017: ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial
    mean of dS_c/dA_k over the last convolutional features A, upsampled
    bilinearly to the input. On a transformer, A is a block's token sequence
    laid on its grid (class and register tokens dropped). ``layer`` (a name in the user's network, or the
    module) defaults to the model's declared feature layer, else the last
    spatial feature map its scores depend on (found by one probe pass)."""

    name: ClassVar[str] = "grad-cam"
    needs: ClassVar[frozenset[str]] = frozenset({"feature layer"})
    layer: str | nn.Module | None = option(None, LAYER_HELP)
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        _check_cam(self.layer, self.chunk)

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        def pick(scores: torch.Tensor, lo: int) -> tuple[list[torch.Tensor], torch.Tensor]:
            chosen, used = target_scores(scores, targets, lo)
            return [chosen], used[:, None]

        return self._cams(model, x, pick)

    def compute_classes(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> MethodResult:
        # The K maps of an image share its forward pass: only the short way back
        # from the scores to the features is taken K times.
        def pick(scores: torch.Tensor, lo: int) -> tuple[list[torch.Tensor], torch.Tensor]:
            rows = targets[lo : lo + len(scores)]
            columns = [target_scores(scores, rows[:, j]) for j in range(rows.shape[1])]
            return [c for c, _ in columns], torch.stack([t for _, t in columns], dim=1)

        return self._cams(model, x, pick)

    def _cams(
        self,
        model: nn.Module,
        x: torch.Tensor,
        pick: Callable[[torch.Tensor, int], tuple[list[torch.Tensor], torch.Tensor]],
    ) -> MethodResult:
        """Grad-CAM for the K scores ``pick(scores, first_row)`` gives each
        image (with the classes they are of, ``(b, K)``); rows image-major
        ``(B*K, 1, H, W)``."""
        require_eager(model, self.name, "layer hook")
        layer = feature_layer_path(model, self.layer, x)
        cams, all_scores, used = [], [], []
        with capturing(model, x, layer) as (score, layout, outputs):
            for lo in range(0, x.shape[0], self.chunk):
                outputs.clear()
                # The input requires grad only so that autograd records the graph.
                scores = score(layout(x[lo : lo + self.chunk]).requires_grad_(True))
                if len(outputs) != 1 or not isinstance(outputs[0], torch.Tensor):
                    raise DeepInsideError(
                        f"layer {user_layer_name(model, layer)!r} must give one feature map (B, K, h, w) "
                        "or token sequence (B, tokens, dim) per call for Grad-CAM"
                    )
                features = as_feature_map(outputs[0].detach(), x.shape[-2:])
                chosen, t = pick(scores, lo)
                k = len(chosen)
                per_class = []
                for j, class_score in enumerate(chosen):
                    (grad,) = torch.autograd.grad(class_score.sum(), outputs[0], retain_graph=j < k - 1)
                    grad = as_feature_map(grad, x.shape[-2:])
                    per_class.append((grad.mean(dim=(2, 3), keepdim=True) * features).sum(1))
                cam = F.relu(torch.stack(per_class, dim=1)).flatten(0, 1)[:, None]  # (b*K, 1, h, w)
                cams.append(F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False))
                all_scores.append(scores.detach().repeat_interleave(k, dim=0))
                used.append(t.reshape(-1))
        return MethodResult(torch.cat(cams).contiguous(), torch.cat(all_scores), torch.cat(used))


@dataclass(frozen=True)
class GuidedGradCam(Method):
    """Selvaraju et al. 2017: guided backprop times the upsampled Grad-CAM."""

    name: ClassVar[str] = "guided-grad-cam"
    needs: ClassVar[frozenset[str]] = frozenset({"feature layer", "rectifier rules"})
    layer: str | nn.Module | None = option(None, LAYER_HELP)
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        _check_cam(self.layer, self.chunk)

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        require_eager(model, self.name, "layer hook and rectifier rules")
        cam = GradCam(self.layer, self.chunk).compute(model, x, targets)
        same = targets if isinstance(targets, ScoreTarget) else cam.targets
        guided = GuidedBackprop(self.chunk).compute(model, x, same)
        return MethodResult(guided.raw * cam.raw, cam.scores, cam.targets)


def _class_token_map(flow: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """The class token's row of a token-to-token map ``(B, T, T)`` over the
    patch tokens, laid on their grid and upsampled to the input: ``(B, 1, H, W)``."""
    grid = token_grid(flow.shape[-1], size)
    if grid is None or grid[0] == 0:
        raise DeepInsideError(
            f"the model's {flow.shape[-1]} tokens hold no class token before a grid of the input: "
            "the attention methods read a class token's attention to the patches"
        )
    prefix, h, w = grid
    row = flow[:, 0, prefix:].reshape(-1, 1, h, w)
    return F.interpolate(row, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class AttentionRollout(Method):
    """Abnar & Zuidema 2020: the blocks' attention, heads fused (``mean``,
    ``max`` or ``min``) with the identity added for the residual, multiplied
    over the blocks; the class token's row over the patches. The same map
    for every class (it reads no score); ``discard_ratio`` drops each
    block's weakest attention first (vit-explain's option)."""

    name: ClassVar[str] = "attention-rollout"
    needs: ClassVar[frozenset[str]] = frozenset({"attention"})
    class_specific: ClassVar[bool] = False
    head_fusion: HeadFusion = option(
        "mean", "how heads are fused: mean, max or min", choices=("mean", "max", "min")
    )
    discard_ratio: float = option(
        0.0, "each block's weakest attention dropped first", kind=float, low=0.0, high=0.99
    )
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        check_count("chunk", self.chunk)
        if self.head_fusion not in ("mean", "max", "min"):
            raise DeepInsideError(f"head fusion must be mean, max or min, got {self.head_fusion!r}")
        if not 0 <= self.discard_ratio < 1:
            raise DeepInsideError(f"discard ratio is a fraction in [0, 1), got {self.discard_ratio}")

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        maps_, all_scores, used = [], [], []
        with scoring(model, x) as (score, layout), torch.no_grad():
            for lo in range(0, x.shape[0], self.chunk):
                with explicit_attention() as weights:
                    scores = score(layout(x[lo : lo + self.chunk]))
                weights = self_attention(weights, len(scores))
                flow = rollout(weights, self.head_fusion, self.discard_ratio)
                maps_.append(_class_token_map(flow, x.shape[-2:]).to(x.dtype))
                all_scores.append(scores)
                used.append(target_scores(scores, targets, lo)[1])
        return MethodResult(torch.cat(maps_), torch.cat(all_scores), torch.cat(used))


@dataclass(frozen=True)
class AttentionRelevance(Method):
    """Chefer, Gur & Wolf 2021 ("Generic Attention-model Explainability"):
    ``R = I``; per block ``R += mean over heads of (dS_c/dA * A)^+ R``; the
    class token's row over the patches. Class-specific: one forward and one
    backward pass."""

    name: ClassVar[str] = "attention-relevance"
    needs: ClassVar[frozenset[str]] = frozenset({"attention"})
    chunk: int = DEFAULT_CHUNK

    def check(self) -> None:
        check_count("chunk", self.chunk)

    def compute(self, model: nn.Module, x: torch.Tensor, targets: Targets) -> MethodResult:
        maps_, all_scores, used = [], [], []
        with scoring(model, x) as (score, layout):
            for lo in range(0, x.shape[0], self.chunk):
                with explicit_attention() as weights:
                    # The input requires grad only so that autograd records the graph.
                    scores = score(layout(x[lo : lo + self.chunk]).requires_grad_(True))
                weights = self_attention(weights, len(scores))
                chosen, t = target_scores(scores, targets, lo)
                grads = torch.autograd.grad(chosen.sum(), weights)
                flow = relevance(weights, list(grads))
                maps_.append(_class_token_map(flow, x.shape[-2:]).to(x.dtype))
                all_scores.append(scores.detach())
                used.append(t)
        return MethodResult(torch.cat(maps_), torch.cat(all_scores), torch.cat(used))


def unmet_need(method: type[Method] | Method, model: nn.Module) -> str | None:
    """Why ``method`` cannot run on ``model`` (a :class:`Classifier`), in one
    line, or None when it can: the test that offers a model only the
    methods that apply to it (the web page, a batch run's default)."""
    needs = method.needs
    if "rectifier rules" in needs or "feature layer" in needs:
        found = compiled_part(model)
        if found is not None:
            return f"{method.name} needs an eager PyTorch module, but the model contains {found}"
    if "feature layer" in needs and isinstance(model, Classifier):
        try:
            model.find_feature_layer()
        except DeepInsideError as err:
            return str(err)
    if "attention" in needs and isinstance(model, Classifier):
        blank = torch.zeros(1, model.preprocessing.channels, *model.preprocessing.input_size)
        blank = blank.to(next(model.parameters(), blank).device)
        try:
            check_self_attention(self_attention_calls(model, blank), 1)
        except DeepInsideError as err:
            return str(err)
    return None


def _check_cam(layer: str | nn.Module | None, chunk: int) -> None:
    check_count("chunk", chunk)
    if layer is not None and not isinstance(layer, (str, nn.Module)):
        raise DeepInsideError(f"layer is a submodule name such as 'features.5' or the module, got {layer!r}")


METHODS: dict[str, type[Method]] = {
    m.name: m
    for m in (
        Gradient,
        DeconvNet,
        GuidedBackprop,
        SmoothGrad,
        IntegratedGradients,
        GradientXInput,
        GradCam,
        GuidedGradCam,
        AttentionRollout,
        AttentionRelevance,
    )
}


def method_from_name(method: str | Method, **options: object) -> Method:
    """A method instance from its name and options (or the instance itself)."""
    if isinstance(method, Method):
        if options:
            method = dataclasses.replace(method, **options)
    else:
        cls = METHODS.get(method)
        if cls is None:
            raise DeepInsideError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - fields)
        if unknown:
            allowed = ", ".join(sorted(fields)) or "none"
            raise DeepInsideError(f"{method} takes no option {unknown[0]!r} (its options: {allowed})")
        method = cls(**options)
    method.check()
    return method


Reduction = Literal["max-abs", "sum-abs", "l2", "sum"]


def reduce_channels(raw: torch.Tensor, how: Reduction = "max-abs") -> torch.Tensor:
    """``(..., C, H, W)`` to ``(..., H, W)``: max of |.| (the paper's), sum of
    |.|, L2 norm, or the signed sum."""
    if how == "max-abs":
        return raw.abs().amax(dim=-3)
    if how == "sum-abs":
        return raw.abs().sum(dim=-3)
    if how == "l2":
        return raw.norm(dim=-3)
    if how == "sum":
        return raw.sum(dim=-3)
    raise DeepInsideError(f"unknown channel reduction {how!r}: use max-abs, sum-abs, l2 or sum")
