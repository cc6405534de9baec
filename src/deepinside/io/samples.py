"""Real photos bundled with scikit-image: demo and web-app samples with no download."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import DeepInsideError
from .photos import named

#: scikit-image's photos, with what each shows. The default model gets the
#: first three right, so the figures explain correct answers; the motorbike
#: shows what a map looks like for a class ImageNet lacks.
SAMPLE_PHOTOS = {
    "chelsea": "a cat",
    "coffee": "a cup of espresso",
    "camera": "a cameraman at his tripod",
    "stereo_motorcycle": "a motorbike, not an ImageNet class",
}


def sample_photo(name: str) -> Image.Image:
    """One of :data:`SAMPLE_PHOTOS` as an RGB image whose ``filename`` is its name."""
    if name not in SAMPLE_PHOTOS:
        raise DeepInsideError(f"unknown sample photo {name!r}: use one of {', '.join(SAMPLE_PHOTOS)}")
    try:
        from skimage import data
    except ImportError:
        raise DeepInsideError(
            "the sample photos come from scikit-image: pip install 'deepinside[demo]'"
        ) from None
    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # a stereo pair and its disparity: the left view
        pixels = pixels[0]
    return named(Image.fromarray(np.asarray(pixels)).convert("RGB"), name)
