"""The natural magnitude spectrum behind ``param.maco``: the mean magnitude
of ImageNet photos, by frequency.

The development photos (/work/shared/data/imagenet-val-loc-dev, ILSVRC-2012
validation photos at 227 px) less those of the class-model benchmark's
classes (every tenth class, ``range(0, 1000, 10)``): each cut to its middle
224 px, taken before the sigmoid (``4 (p - mean)``: the sigmoid's inverse
near grey) and colour-decorrelated (the inverse of Lucent's colour matrix);
the magnitude of their orthonormal real 2-D FFT, averaged over the photos
and over rings of frequency, one per channel. Prints the table that
``param.NATURAL_MAGNITUDE`` holds. ``--source skimage`` takes five of
scikit-image's bundled colour photos instead (astronaut, chelsea, coffee,
rocket, the left motorcycle view; cut square and shrunk to 224 px).

    python benchmarks/natural_spectrum.py [--source skimage]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from deepinside.visualization.param import NATURAL_FREQUENCIES, color_correlation, fft_frequencies

SIZE = 224
DEV = Path("/work/shared/data/imagenet-val-loc-dev")


def dev_photos() -> list[torch.Tensor]:
    """The development photos not of a benchmark class, as ``(3, SIZE, SIZE)`` pixels in [0, 1]."""
    annotations = json.loads((DEV / "annotations.json").read_text())
    out = []
    for entry in annotations:
        if entry["class_index"] % 10 == 0:  # the class-model benchmark's classes
            continue
        pixels = np.asarray(Image.open(DEV / entry["image"]).convert("RGB"))
        photo = torch.tensor(pixels, dtype=torch.float64).permute(2, 0, 1) / 255
        top, left = (photo.shape[1] - SIZE) // 2, (photo.shape[2] - SIZE) // 2
        out.append(photo[:, top : top + SIZE, left : left + SIZE])
    return out


def skimage_photos() -> list[torch.Tensor]:
    from skimage import data

    arrays = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0]]
    out = []
    for a in arrays:
        photo = torch.tensor(a[..., :3], dtype=torch.float64).permute(2, 0, 1)[None] / 255
        side = min(photo.shape[-2:])
        top, left = (photo.shape[2] - side) // 2, (photo.shape[3] - side) // 2
        square = photo[..., top : top + side, left : left + side]
        out.append(F.interpolate(square, size=(SIZE, SIZE), mode="bilinear", antialias=True)[0])
    return out


def before_sigmoid(photo: torch.Tensor) -> torch.Tensor:
    """The photo as the Fourier parameterisations make a picture before the
    colour mixing and sigmoid."""
    z = 4 * (photo - photo.mean((1, 2), keepdim=True))
    return torch.linalg.solve(color_correlation(dtype=torch.float64), z.flatten(1)).view(z.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("dev", "skimage"), default="dev")
    photos = dev_photos() if parser.parse_args().source == "dev" else skimage_photos()
    magnitude = torch.stack([torch.fft.rfft2(before_sigmoid(p), norm="ortho").abs() for p in photos]).mean(0)
    # Each ring: the coefficients nearer (in log frequency) to its frequency than to any other ring's.
    log_f = fft_frequencies(SIZE, SIZE).clamp_min(1e-9).log()
    rings = torch.tensor(NATURAL_FREQUENCIES, dtype=torch.float64).log()
    nearest = (log_f[..., None] - rings).abs().argmin(-1)
    nearest[0, 0] = -1  # the mean: no frequency
    print(f"# {len(photos)} photos")
    print("NATURAL_MAGNITUDE = (")
    for c in range(3):
        print(
            "    ("
            + ", ".join(f"{float(magnitude[c][nearest == k].mean()):.4g}" for k in range(len(rings)))
            + "),"
        )
    print(")")


if __name__ == "__main__":
    main()
