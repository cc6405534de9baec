"""Real photos bundled with scikit-image: demo and web-app samples with no download."""

from __future__ import annotations

from PIL import Image

from ..errors import DeepInsideError

#: scikit-image's photos that show an ImageNet class: a cat, a cup of coffee,
#: a rocket (a space shuttle for the model) and an astronaut.
SAMPLE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


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
    photo = Image.fromarray(getattr(data, name)()).convert("RGB")
    photo.filename = name  # type: ignore[attr-defined]
    return photo
