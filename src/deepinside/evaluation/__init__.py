"""How good is a map? Faithfulness (deletion/insertion), the pointing game,
and the sanity check by cascading randomisation."""

from .annotations import Annotated, load_annotations, match_images
from .faithfulness import Curves, auc, deletion_insertion, gaussian_blur, random_maps
from .pointing import centre_baseline, pointing_game
from .sanity import SanityResult, cascading_randomization

__all__ = [
    "Annotated",
    "Curves",
    "SanityResult",
    "auc",
    "cascading_randomization",
    "centre_baseline",
    "deletion_insertion",
    "gaussian_blur",
    "load_annotations",
    "match_images",
    "pointing_game",
    "random_maps",
]
