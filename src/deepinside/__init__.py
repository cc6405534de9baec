"""deepinside: what an image classifier has learned, and why it decides.

>>> import deepinside
>>> model = deepinside.load_model()          # EfficientNet-Lite0, offline
>>> inputs, placements = model.prepare([photo])  # doctest: +SKIP
>>> maps = deepinside.saliency(model, inputs)     # (B, H, W), the paper's maps  # doctest: +SKIP
"""

from .attribution import Attribution, attribute, saliency, targets
from .errors import DeepInsideError, ImageError
from .explain import explain_photos
from .localization import localize
from .models import Classifier, Preprocessing, imagenet_classes, load_model
from .visualization import visualize_class

__version__ = "0.1.0"

__all__ = [
    "Attribution",
    "Classifier",
    "DeepInsideError",
    "ImageError",
    "Preprocessing",
    "attribute",
    "imagenet_classes",
    "explain_photos",
    "load_model",
    "localize",
    "saliency",
    "targets",
    "visualize_class",
]
