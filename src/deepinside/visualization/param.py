"""What is optimised: image parameterisations.

A parameterisation factory is called once per batch with a :class:`ParamSpec`
and returns a :class:`Param`: the leaf tensors to optimise (batch first) and
a function that builds the image from tensors like them, in the model's
*input space* ``(B, 3, H, W)`` (normalised; ``preprocessing.denormalize``
gives pixels). Like Lucent, ``params, image_fn = param`` unpacks it.

- :func:`pixels`: the raw input, the paper's choice (starts from the zero
  image, the training mean).
- :func:`fft`: a Fourier-domain image whose frequencies are scaled by 1/f
  (so that a gradient step changes low frequencies as much as high ones: a
  preconditioner), optionally colour-decorrelated, squashed into valid pixels
  by a sigmoid (Olah et al., "Feature Visualization", Distill 2017). It can
  also make its images moved and cut to a window (:meth:`Param.window`):
  the picture is periodic, and a shift of its spectrum moves it for the
  cost of the 1/f scaling it is folded into.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DeepInsideError
from ..models.preprocessing import Preprocessing


@dataclass(frozen=True)
class ParamSpec:
    """What a parameterisation is built for.

    Attributes:
        batch: number of images.
        size: ``(H, W)`` of the image.
        preprocessing: the model's input convention (mean, std).
        generators: one random generator per image (an image's randomness
            does not depend on which other images share its batch).
        device, dtype: where and in what precision the parameters live.
    """

    batch: int
    size: tuple[int, int]
    preprocessing: Preprocessing
    generators: Sequence[torch.Generator]
    device: torch.device
    dtype: torch.dtype


@dataclass
class Param:
    """Parameters (leaf tensors, batch first) and ``image_of(tensors)``: the
    image ``(B, 3, H, W)`` in model input space made from tensors shaped like
    the parameters, row by row (the parameters themselves, some of their
    rows, or a running average of them). ``pixels`` is the raw input tensor
    when the image is the parameter itself (post-step regularisers such as
    blur act on it). ``window_of(tensors, shifts, size)``, where given, makes
    the images moved by ``shifts`` and cut to ``size`` without making them
    whole first (see :meth:`window`). Like Lucent, ``params, image_fn =
    param`` unpacks it."""

    params: list[torch.Tensor]
    image_of: Callable[[Sequence[torch.Tensor]], torch.Tensor]
    pixels: torch.Tensor | None = None
    window_of: Callable[[Sequence[torch.Tensor], torch.Tensor, tuple[int, int]], torch.Tensor] | None = None

    def __iter__(self) -> Iterator[object]:
        return iter((self.params, self.image_fn))

    def image_fn(self) -> torch.Tensor:
        """The image of the parameters as they are now."""
        return self.image_of(self.params)

    def image(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The image of every row, or of ``rows`` (indices) only."""
        return self.image_of(self._rows(rows))

    def window(self, rows: torch.Tensor | None, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The images of every row (or of ``rows``) moved by ``shifts``
        ``(B, 2)`` pixels, (x, y): output pixel ``p`` shows the image at ``p +
        shift``, bilinearly between pixels, as a periodic image; cut to
        ``size`` from the top left. Only where ``window_of`` is given."""
        if self.window_of is None:
            raise DeepInsideError("this parameterisation makes whole images only: resample them instead")
        return self.window_of(self._rows(rows), shifts, size)

    def _rows(self, rows: torch.Tensor | None) -> list[torch.Tensor]:
        return self.params if rows is None else [p[rows] for p in self.params]


ParamFactory = Callable[[ParamSpec], Param]


def _normal(spec: ParamSpec, shape: Sequence[int], sd: float) -> torch.Tensor:
    """Per-image standard normal draws scaled by ``sd``, each from its image's generator."""
    rows = [
        torch.randn(tuple(shape), generator=g, device=g.device, dtype=torch.float32) for g in spec.generators
    ]
    return torch.stack(rows).to(spec.device, spec.dtype) * sd


def pixels(sd: float = 0.0) -> ParamFactory:
    """The image itself, in model input space, starting from zero (the
    training mean) plus Gaussian noise of ``sd`` (0: the paper's start)."""
    if sd < 0:
        raise DeepInsideError(f"initial noise sd must be >= 0, got {sd}")

    def build(spec: ParamSpec) -> Param:
        h, w = spec.size
        x = (
            _normal(spec, (3, h, w), sd)
            if sd > 0
            else torch.zeros(spec.batch, 3, h, w, device=spec.device, dtype=spec.dtype)
        )
        x.requires_grad_(True)
        return Param([x], lambda tensors: tensors[0], pixels=x)

    return build


# Lucent's colour correlation matrix: the square root of the covariance of
# ImageNet pixel colours (from its SVD); columns scaled to a unit max norm.
_COLOR_CORRELATION_SVD_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))


def color_correlation(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``(3, 3)`` matrix mapping decorrelated colour to RGB (Lucent's)."""
    m = torch.tensor(_COLOR_CORRELATION_SVD_SQRT, dtype=torch.float64)
    return (m / m.norm(dim=0).max()).to(device, dtype)


def fft_frequencies(h: int, w: int) -> torch.Tensor:
    """``|f|`` of each coefficient of a real 2-D FFT of an ``h x w`` image ``(h, w // 2 + 1)``."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return (fx * fx + fy * fy).sqrt()


def fft(sd: float = 0.01, decay_power: float = 1.0, decorrelate: bool = True) -> ParamFactory:
    """A Fourier-parameterised image with ``1 / |f|^decay_power`` spectrum
    scaling, optionally colour-decorrelated, through a sigmoid into pixels in
    (0, 1), then normalised into model input space.

    ``sd`` is the initial noise of the spectrum (0 starts from uniform grey).
    """
    if sd < 0:
        raise DeepInsideError(f"initial noise sd must be >= 0, got {sd}")

    def build(spec: ParamSpec) -> Param:
        h, w = spec.size
        freqs = fft_frequencies(h, w)
        # Lucent divides the image by a "magic" 4 (unit-variance spectrum after 1/f scaling).
        scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power / 4.0
        scale = scale.to(spec.device, spec.dtype)[None, None]
        spectrum = (
            _normal(spec, (3, *freqs.shape, 2), sd)
            if sd > 0
            else torch.zeros(spec.batch, 3, *freqs.shape, 2, device=spec.device, dtype=spec.dtype)
        )
        spectrum.requires_grad_(True)
        finish = _finisher(spec, decorrelate)
        shift = _shifter(spec)

        def image_of(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
            # A complex-by-real product: one kernel, where a broadcast over (re, im) takes several.
            return finish(torch.fft.irfft2(torch.view_as_complex(tensors[0]) * scale, s=(h, w), norm="ortho"))

        def window_of(
            tensors: Sequence[torch.Tensor], shifts: torch.Tensor, size: tuple[int, int]
        ) -> torch.Tensor:
            # Moving the image is a product with the shift's spectrum, folded
            # into the 1/f scaling; the colour and sigmoid then make only the window.
            factor = (shift(shifts) * scale[0])[:, None]
            image = torch.fft.irfft2(torch.view_as_complex(tensors[0]) * factor, s=(h, w), norm="ortho")
            return finish(_cut(image, size))

        return Param([spectrum], image_of, window_of=window_of)

    return build


# The magnitude spectrum of natural photos: the mean magnitude of the
# orthonormal real 2-D FFT of 265 ImageNet validation photos (the project's
# development photos less those of the class-model benchmark's classes), each
# cut to its middle 224 px, taken before the sigmoid (4 (p - mean), the
# sigmoid's inverse near grey) and colour-decorrelated, per channel, in rings
# about these frequencies (cycles per pixel). benchmarks/natural_spectrum.py
# derives the table.
NATURAL_FREQUENCIES = (
    0.004464, 0.007075, 0.01121, 0.01777, 0.02816, 0.04463, 0.07073, 0.1121, 0.1776, 0.2815, 0.4462, 0.7071
)  # fmt: skip
NATURAL_MAGNITUDE = (
    (73.65, 39.54, 28.62, 13.65, 7.624, 4.431, 2.437, 1.384, 0.7718, 0.4381, 0.2841, 0.2081),
    (66.27, 36.76, 24.89, 11.86, 6.783, 3.776, 1.988, 0.9669, 0.3827, 0.126, 0.05341, 0.03304),
    (64.22, 37.33, 25.78, 12.33, 6.901, 3.945, 2.115, 1.113, 0.4902, 0.1709, 0.07601, 0.05173),
)


def natural_magnitude(h: int, w: int, contrast: float = 1.0) -> torch.Tensor:
    """``(3, h, w // 2 + 1)``: a natural photo's magnitude at each coefficient
    of a real 2-D FFT (orthonormal, before the sigmoid, colour-decorrelated),
    from :data:`NATURAL_MAGNITUDE`, straight between its rings in log-log,
    held beyond them, times ``contrast``; 0 at ``f = 0`` (mean grey)."""
    log_f = fft_frequencies(h, w).clamp_min(1.0 / max(h, w)).log()
    rings = torch.tensor(NATURAL_FREQUENCIES, dtype=torch.float64).log()
    table = torch.tensor(NATURAL_MAGNITUDE, dtype=torch.float64).log()
    k = torch.searchsorted(rings, log_f.flatten()).clamp(1, len(rings) - 1)
    part = ((log_f.flatten() - rings[k - 1]) / (rings[k] - rings[k - 1])).clamp(0, 1)
    log_m = table[:, k - 1] + part * (table[:, k] - table[:, k - 1])
    magnitude = contrast * log_m.exp().view(3, *log_f.shape)
    magnitude[:, 0, 0] = 0.0
    return magnitude


def maco(contrast: float = 1.0, decorrelate: bool = True) -> ParamFactory:
    """Magnitude-constrained Fourier image (MACO; Fel et al. 2023, "Unlocking
    feature visualization for deeper networks with magnitude constrained
    optimization"): only the phase of each coefficient is optimised, the
    magnitude fixed to a natural photo's (:func:`natural_magnitude`, times
    ``contrast``), so the picture keeps a photo's spread of coarse and fine
    detail and its contrast whatever the gradient does. Colour-decorrelated
    like :func:`fft`, through a sigmoid into pixels; starts from a random
    phase (a natural-looking noise picture)."""
    if not contrast > 0:
        raise DeepInsideError(f"contrast must be > 0, got {contrast}")

    def build(spec: ParamSpec) -> Param:
        h, w = spec.size
        magnitude = natural_magnitude(h, w, contrast).to(spec.device, spec.dtype)
        rows = [torch.rand((3, h, w // 2 + 1), generator=g, device=g.device) for g in spec.generators]
        phase = ((torch.stack(rows) * 2 - 1) * math.pi).to(spec.device, spec.dtype).requires_grad_(True)
        finish = _finisher(spec, decorrelate)
        shift = _shifter(spec)

        def spectrum(phases: torch.Tensor) -> torch.Tensor:
            return torch.polar(magnitude.expand_as(phases), _hermitian_phase(phases, h, w))

        def image_of(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
            return finish(torch.fft.irfft2(spectrum(tensors[0]), s=(h, w), norm="ortho"))

        def window_of(
            tensors: Sequence[torch.Tensor], shifts: torch.Tensor, size: tuple[int, int]
        ) -> torch.Tensor:
            image = torch.fft.irfft2(spectrum(tensors[0]) * shift(shifts)[:, None], s=(h, w), norm="ortho")
            return finish(_cut(image, size))

        return Param([phase], image_of, window_of=window_of)

    return build


def _hermitian_phase(phase: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The phases with the columns a real FFT holds both halves of (the
    first, and the last for even ``w``) made odd down the rows, ``p[-k] =
    -p[k]``, as a real image's are: otherwise the inverse FFT keeps only their
    Hermitian part, and their magnitude would shrink."""
    flip = (-torch.arange(h, device=phase.device)) % h

    def odd(column: torch.Tensor) -> torch.Tensor:
        return (column - column[..., flip, :]) / 2

    parts = [odd(phase[..., :1]), phase[..., 1 : w // 2 + (w % 2)]]
    if w % 2 == 0:
        parts.append(odd(phase[..., w // 2 :]))
    return torch.cat(parts, -1)


def _finisher(spec: ParamSpec, decorrelate: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """What turns a decorrelated image before its sigmoid into model input:
    the colour mixing, the sigmoid and the normalisation."""
    colour = color_correlation(spec.device, spec.dtype)
    # Normalising (p - mean) / std as one multiply-add: p * (1 / std) - mean / std.
    mean = torch.tensor(spec.preprocessing.mean, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(spec.preprocessing.std, dtype=torch.float64).view(3, 1, 1)
    gain = (1 / std).to(spec.device, spec.dtype)
    offset = (-mean / std).to(spec.device, spec.dtype)

    def finish(image: torch.Tensor) -> torch.Tensor:
        # A matmul over the flattened image: no copies (einsum makes one).
        if decorrelate:
            image = torch.matmul(colour, image.flatten(2)).view(image.shape)
        return torch.addcmul(offset, torch.sigmoid(image), gain)

    return finish


def _shifter(spec: ParamSpec) -> Callable[[torch.Tensor], torch.Tensor]:
    """``shifts (B, 2) -> (B, H, W // 2 + 1)``: the spectrum of moving each
    periodic image by its shift (x, y)."""
    h, w = spec.size
    # Whole cycles per image of each coefficient, down the rows and along the columns.
    cycles_y = torch.fft.fftfreq(h, 1 / h, dtype=torch.float64)
    cycles_x = torch.fft.rfftfreq(w, 1 / w, dtype=torch.float64)
    complex_dtype = spec.dtype.to_complex()

    def shift(shifts: torch.Tensor) -> torch.Tensor:
        shifts = shifts.to("cpu", torch.float64)
        down = _shift_spectrum(shifts[:, 1], cycles_y, h).to(spec.device, complex_dtype)
        across = _shift_spectrum(shifts[:, 0], cycles_x, w).to(spec.device, complex_dtype)
        return down[:, :, None] * across[:, None, :]

    return shift


def _cut(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The window of ``size`` at the top left of ``image``. A negative pad
    cuts it out as one contiguous copy, whose gradient is one pad, where
    slicing takes two of each way."""
    h, w = image.shape[-2:]
    return image if tuple(size) == (h, w) else F.pad(image, (0, size[1] - w, 0, size[0] - h))


def _shift_spectrum(shift: torch.Tensor, cycles: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, K)``: the spectrum of moving a periodic signal of ``n`` samples
    by ``shift`` ``(B,)`` samples with linear interpolation, ``y[p] = (1 - f)
    x[p + i] + f x[p + i + 1]`` for ``shift = i + f``, at the frequencies of
    ``cycles`` ``(K,)`` (whole cycles per ``n`` samples)."""
    whole = shift.floor()
    part = (shift - whole)[:, None]
    turn = (2 * math.pi / n) * cycles
    one = torch.ones((), dtype=torch.float64)
    return torch.polar(one, whole[:, None] * turn) * ((1 - part) + part * torch.polar(one, turn))


def check_size(size: int | Sequence[int]) -> tuple[int, int]:
    """An image size as ``(H, W)``, refusing sizes no classifier can use."""
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2:
        raise DeepInsideError(f"size must be one number or (height, width), got {size!r}")
    h, w = hw
    if not (16 <= h <= 2048 and 16 <= w <= 2048):
        raise DeepInsideError(f"image size {h}x{w} is out of range: use 16 to 2048 pixels a side")
    if h * w > 1024 * 1024:
        raise DeepInsideError(f"image size {h}x{w} is too large: at most 1024x1024 pixels in all")
    return h, w


__all__ = [
    "Param",
    "ParamFactory",
    "ParamSpec",
    "check_size",
    "color_correlation",
    "fft",
    "fft_frequencies",
    "maco",
    "natural_magnitude",
    "pixels",
]
