"""The paper's figures on photos bundled with scikit-image, as ``deepinside demo``
draws them: saliency (Fig. 2), localisation (section 3.1) and class models (Fig. 1).

The photos are ones the default model classifies right, so that each figure
explains a correct answer; each row's caption says what the photo shows.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from . import pictures
from .explain import collect, explain_photos
from .explain_files import save_saliency
from .io.samples import SAMPLE_PHOTOS, sample_photo
from .localization import PRESETS, localize
from .models import Classifier
from .visualization import visualize_class
from .visualization.output import comparison_figure

DEMO_PHOTOS = SAMPLE_PHOTOS
DEMO_CLASSES = ("goldfish", "space shuttle", "tabby", "espresso")
#: Side of a figure's cells in pixels, and of the box labels drawn at that size.
CELL = 240
LABEL_PX = 14


def bundled_photos() -> list[Image.Image]:
    """The demo photos as RGB images named by ``filename`` (scikit-image's names)."""
    return [sample_photo(name) for name in DEMO_PHOTOS]


def _shows(photo: Image.Image) -> str:
    name = getattr(photo, "filename", "") or "photo"
    return f"{name} ({DEMO_PHOTOS[name]})" if name in DEMO_PHOTOS else name


def saliency_figure(model: Classifier, photos: list[Image.Image], out: Path | None = None) -> Image.Image:
    """Like the paper's Figure 2: each photo, its top-1 saliency map and an
    overlay; with ``out``, each photo's maps are also written there."""
    rows, captions = [], []
    for photo, r in zip(photos, collect(explain_photos(model, photos))):
        if out is not None:
            save_saliency(r, out, r.source, model.name)
        on_photo = r.maps[0].on_photo(r.placement)
        rows.append([r.photo, pictures.grey_map(on_photo), pictures.overlay(r.photo, on_photo)])
        top = r.predictions[0]
        captions.append(f"{_shows(photo)}: the model says {top.label} ({top.probability:.0%})")
    return pictures.figure(
        rows,
        captions,
        cell=CELL,
        title=f"Image-specific class saliency (Simonyan et al. 2013, Fig. 2) - {model.name}",
        headings=("photo", "saliency of the top class", "overlay"),
    )


def localization_figure(model: Classifier, photos: list[Image.Image]) -> Image.Image:
    """Like the paper's localisation figure: each photo with its top-1 boxes
    (paper config red, default green), then each config's map and mask."""
    found = {name: localize(model, photos, top_k=1, config=PRESETS[name]) for name in ("paper", "default")}
    rows, captions = [], []
    for i, photo in enumerate(photos):
        paper, default = found["paper"][i].boxes[0], found["default"][i].boxes[0]
        # localize keeps the map each box was cut from (only a hand-made ClassBox lacks it).
        assert paper.working_saliency is not None and default.working_saliency is not None
        rows.append(
            [
                boxes_at_cell_size(photo, [(paper.box, "paper"), (default.box, "default")]),
                pictures.grey_map(paper.working_saliency),
                pictures.mask_image(paper.working_mask),
                pictures.heatmap(default.working_saliency),
                pictures.mask_image(default.working_mask),
            ]
        )
        captions.append(f"{_shows(photo)}: boxes for {paper.prediction.label}")
    default_config = PRESETS["default"]
    method = default_config.method + (", walked" if default_config.affinity_steps else "")
    return pictures.figure(
        rows,
        captions,
        cell=CELL,
        title="Localisation for free (Simonyan et al. 2013, section 3.1)",
        headings=(
            "boxes: paper, default",
            "paper: gradient",
            "paper: GraphCut",
            f"default: {method}",
            "default: mask",
        ),
    )


def boxes_at_cell_size(
    photo: Image.Image, boxes: list[tuple[tuple[float, float, float, float], str]]
) -> Image.Image:
    """The photo fitted in a figure cell with its boxes drawn at that size, so
    that the labels keep their size in the figure."""
    thumb = pictures.thumbnail(photo, CELL)
    sx, sy = thumb.width / photo.width, thumb.height / photo.height
    scaled = [((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), label) for b, label in boxes]
    return pictures.draw_boxes(thumb, scaled, label_size=LABEL_PX)


def classmodel_figure(model: Classifier) -> Image.Image:
    """Like the paper's Figure 1: a few classes, the paper's preset beside the default."""
    results = [visualize_class(model, DEMO_CLASSES, preset=p, progress=None) for p in ("paper", "default")]
    return comparison_figure(
        results, ["paper", "default"], title="Class models (paper sec. 2): paper | default"
    )
