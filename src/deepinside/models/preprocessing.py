"""How a classifier wants its input, and the way back from its input to the photo.

A :class:`Preprocessing` turns a photo into the model's input tensor and
remembers where that input came from (a :class:`Placement`), so that a map
computed on the input can be laid back over the user's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DeepInsideError
from ..io.photos import to_rgb

ResizePolicy = Literal["center-crop", "stretch"]


@dataclass(frozen=True)
class Placement:
    """Where a model input lies in its photo.

    ``box`` is ``(x0, y0, x1, y1)`` in photo pixels (floats): the part of the
    photo that was resampled to the model's input.
    """

    photo_size: tuple[int, int]  # (width, height)
    box: tuple[float, float, float, float]

    def to_photo(self, maps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Resample maps ``(..., h, w)`` on the model input to the photo,
        bilinearly: ``(..., H, W)`` at the photo's own size, or at ``size``
        ``(width, height)`` covering the whole photo. Photo pixels the model
        never saw get 0."""
        w, h = self.photo_size
        out_w, out_h = size or (w, h)
        x0, y0, x1, y1 = self.box
        lead, (mh, mw) = maps.shape[:-2], maps.shape[-2:]
        flat = maps.reshape(1, -1, mh, mw).float()
        # Output pixel centres in photo pixels, then in the map's normalised [-1, 1] coordinates.
        xs = (torch.arange(out_w, device=maps.device) + 0.5) * (w / out_w)
        ys = (torch.arange(out_h, device=maps.device) + 0.5) * (h / out_h)
        xs, ys = (xs - x0) / (x1 - x0) * 2 - 1, (ys - y0) / (y1 - y0) * 2 - 1
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = (xs.abs() <= 1)[None, :] & (ys.abs() <= 1)[:, None]
        out = out * inside
        return out.reshape(*lead, out_h, out_w).to(maps.dtype)


@dataclass(frozen=True)
class Preprocessing:
    """A classifier's input convention.

    Args:
        input_size: ``(height, width)`` of the model input.
        mean, std: per-channel values in the [0, 1] pixel scale; the input is
            ``(pixel / 255 - mean) / std``. Their length is the number of
            input channels: 3 (RGB), or 1 (photos are converted to grey); a
            model of other channel counts takes tensors, not photos.
        resize: ``"center-crop"`` takes the centred box of the input's aspect
            ratio covering ``crop_fraction`` of the photo's shorter side (the
            usual ImageNet evaluation); ``"stretch"`` resamples the whole photo.
        crop_fraction: see ``resize``.
    """

    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize: ResizePolicy = "center-crop"
    crop_fraction: float = 0.875

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h < 1 or w < 1 or h > 8192 or w > 8192:
            raise DeepInsideError(f"input size {h}x{w} is out of range: use 1 to 8192 pixels a side")
        if len(self.mean) != len(self.std) or not self.mean:
            raise DeepInsideError(
                "mean and std need one value per input channel each, "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise DeepInsideError(f"std must be positive, got {self.std}")
        if self.resize not in ("center-crop", "stretch"):
            raise DeepInsideError(f"unknown resize policy {self.resize!r}: use center-crop or stretch")
        if not 0 < self.crop_fraction <= 1:
            raise DeepInsideError(f"crop fraction must be in (0, 1], got {self.crop_fraction}")

    @property
    def channels(self) -> int:
        """The number of input channels (one mean and std each)."""
        return len(self.mean)

    def placement(self, photo_size: tuple[int, int]) -> Placement:
        """Where the model input lies in a photo of ``(width, height)``."""
        w, h = photo_size
        if self.resize == "stretch":
            return Placement(photo_size, (0.0, 0.0, float(w), float(h)))
        ih, iw = self.input_size
        scale = min(w / iw, h / ih) * self.crop_fraction
        bw, bh = iw * scale, ih * scale
        x0, y0 = (w - bw) / 2, (h - bh) / 2
        return Placement(photo_size, (x0, y0, x0 + bw, y0 + bh))

    def __call__(self, photo: Image.Image) -> tuple[torch.Tensor, Placement]:
        """A photo as the model's input ``(channels, H, W)`` float32 (RGB, or
        grey for a one-channel model), and its placement."""
        if self.channels not in (1, 3):
            raise DeepInsideError(
                f"the model takes {self.channels} input channels: photos give 3 (RGB) or 1 (grey); "
                "pass it tensors in Python"
            )
        placement = self.placement(photo.size)
        ih, iw = self.input_size
        picture = to_rgb(photo) if self.channels == 3 else to_rgb(photo).convert("L")
        resized = picture.resize((iw, ih), Image.Resampling.BICUBIC, box=placement.box, reducing_gap=3.0)
        # In NumPy, not torch (the same float32 operations, the same values): a
        # torch operation called from a reading thread starts a team of torch
        # threads of its own, which competes with the model's.
        pixels = np.asarray(resized, dtype=np.float32).reshape(ih, iw, -1).transpose(2, 0, 1) / np.float32(
            255.0
        )
        mean, std = (np.array(v, dtype=np.float32).reshape(-1, 1, 1) for v in (self.mean, self.std))
        return torch.from_numpy(np.ascontiguousarray((pixels - mean) / std)), placement

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] ``(..., channels, H, W)`` to model input."""
        mean, std = self._stats(images)
        return (images - mean) / std

    def denormalize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model input ``(..., channels, H, W)`` back to pixels in [0, 1] (not clipped)."""
        mean, std = self._stats(inputs)
        return inputs * std + mean

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def shape(v: tuple[float, ...]) -> torch.Tensor:
            return torch.tensor(v, dtype=like.dtype, device=like.device).view(-1, 1, 1)

        return shape(self.mean), shape(self.std)
