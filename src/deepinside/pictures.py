"""Maps as pictures: the paper's grey map, colour maps and overlays, figures.

Algorithms never import this module; it turns their raw tensors into PIL
images for files, notebooks and (to come) the web app. Normalisation for display
happens here and only here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def _as_array(saliency_map: torch.Tensor | np.ndarray) -> np.ndarray:
    a = (
        saliency_map.detach().float().cpu().numpy()
        if isinstance(saliency_map, torch.Tensor)
        else np.asarray(saliency_map, dtype=np.float32)
    )
    if a.ndim != 2:
        raise ValueError(f"a map must be 2-D (H, W), got shape {a.shape}")
    return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)


def normalize(
    saliency_map: torch.Tensor | np.ndarray, percentile: float = 100.0, signed: bool | None = None
) -> np.ndarray:
    """Scale a map to [0, 1] for display.

    A map without negative values (max-abs, Grad-CAM, ...): subtract its
    minimum, then divide by its ``percentile`` minus the minimum (the maximum
    by default, as in the paper), clipping above 1; a constant map becomes
    all zeros. A sparse map whose ``percentile`` is still its minimum is
    divided by its maximum instead. NaN and infinite values count as 0.

    A signed map (negative values beyond round-off, e.g. from the ``sum``
    reduction; ``signed`` True / False forces either reading): zero becomes
    0.5 and plus or minus the ``percentile`` of ``|map|`` become 1 and 0, so
    that the sign stays readable."""
    a = _as_array(saliency_map)
    if _signed(a) if signed is None else signed:
        return 0.5 + 0.5 * np.clip(a / _top(np.abs(a), 0.0, percentile), -1.0, 1.0)
    low = float(a.min())
    return np.clip((a - low) / _top(a, low, percentile), 0.0, 1.0)


def _signed(a: np.ndarray) -> bool:
    """Whether a map has negative values beyond round-off (0.1% of its largest)."""
    return bool(a.min() < -1e-3 * np.abs(a).max())


def _top(a: np.ndarray, low: float, percentile: float) -> float:
    """What maps to 1, less ``low``: the ``percentile`` of ``a``, or its maximum
    where under (100 - percentile)% of pixels are above ``low`` (saturating
    would blank them all); infinity for a constant map (all becomes 0)."""
    high = float(a.max())
    top = float(np.percentile(a, percentile)) if percentile < 100 else high
    if top <= low:
        top = high
    return top - low if top > low else float("inf")


def _colormap_jet(v: np.ndarray) -> np.ndarray:
    return np.clip(1.5 - np.abs(4.0 * v[..., None] - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)


def _colormap_hot(v: np.ndarray) -> np.ndarray:
    return np.clip(np.stack([3 * v, 3 * v - 1, 3 * v - 2], axis=-1), 0.0, 1.0)


def _colormap_grey(v: np.ndarray) -> np.ndarray:
    return np.repeat(v[..., None], 3, axis=-1)


def _colormap_bwr(v: np.ndarray) -> np.ndarray:
    """Blue (0), white (0.5), red (1): for signed maps."""
    return np.clip(np.stack([2 * v, 1 - np.abs(2 * v - 1), 2 - 2 * v], axis=-1), 0.0, 1.0)


_COLORMAPS = {
    "jet": _colormap_jet,
    "hot": _colormap_hot,
    "grey": _colormap_grey,
    "gray": _colormap_grey,
    "bwr": _colormap_bwr,
}


def colorize(values: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """Values in [0, 1] ``(H, W)`` to RGB ``(H, W, 3)`` in [0, 1]: built-in
    ``jet``, ``hot``, ``grey``, ``bwr``, or any matplotlib colour map if it is installed."""
    if cmap in _COLORMAPS:
        return _COLORMAPS[cmap](values)
    try:
        import matplotlib  # optional
    except ImportError:
        raise ValueError(
            f"unknown colour map {cmap!r}: use one of {', '.join(_COLORMAPS)} or install matplotlib"
        ) from None
    try:
        return np.asarray(matplotlib.colormaps[cmap](values))[..., :3]
    except KeyError:
        raise ValueError(f"unknown colour map {cmap!r}") from None


def grey_map(saliency_map: torch.Tensor | np.ndarray, percentile: float = 99.0) -> Image.Image:
    """The paper's picture: the normalised map as a grey image (white =
    salient; for a signed map, mid-grey is zero, white positive, black negative).

    Gradient maps are spiky, so by default the top 1% of values saturate (as in
    PAIR saliency's display); ``percentile=100`` divides by the maximum."""
    return Image.fromarray(np.round(normalize(saliency_map, percentile) * 255).astype(np.uint8), mode="L")


def heatmap(
    saliency_map: torch.Tensor | np.ndarray, cmap: str | None = None, percentile: float = 100.0
) -> Image.Image:
    """The normalised map through a colour map, as an RGB image (default:
    ``jet``; ``bwr`` for a signed map, white at zero)."""
    a = _as_array(saliency_map)
    rgb = colorize(normalize(a, percentile), cmap or ("bwr" if _signed(a) else "jet"))
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8), mode="RGB")


def overlay(
    photo: Image.Image,
    saliency_map: torch.Tensor | np.ndarray,
    opacity: float = 0.5,
    cmap: str | None = None,
    percentile: float = 99.0,
) -> Image.Image:
    """The map in colour over the photo. Each pixel's colour weight is
    ``opacity`` times its normalised saliency (for a signed map: its size
    either way, in ``bwr``: red positive, blue negative), so unimportant
    pixels show the photo as it is. The map is resized to the photo if sizes
    differ."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    a = _as_array(saliency_map)
    signed = _signed(a)
    values = normalize(a, percentile, signed)
    if values.shape != (photo.height, photo.width):
        values = np.asarray(
            Image.fromarray(values.astype(np.float32), mode="F").resize(photo.size, Image.Resampling.BILINEAR)
        ).clip(0, 1)
    base = np.asarray(photo.convert("RGB"), dtype=np.float32) / 255.0
    strength = np.abs(2 * values - 1) if signed else values
    alpha = (opacity * strength)[..., None]
    mixed = (1 - alpha) * base + alpha * colorize(values, cmap or ("bwr" if signed else "jet"))
    return Image.fromarray(np.round(mixed * 255).astype(np.uint8), mode="RGB")


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` (scalable from Pillow 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def figure(
    rows: Sequence[Sequence[Image.Image]],
    captions: Sequence[str],
    cell: int = 224,
    title: str = "",
    headings: Sequence[str] = (),
) -> Image.Image:
    """A grid: one row per entry, its pictures side by side (each fitted in a
    ``cell`` square), a caption under each row, like the paper's Figure 2;
    ``headings`` name the columns above the first row."""
    thumbs = [[thumbnail(p, cell) for p in row] for row in rows]
    heights = [max(t.height for t in row) for row in thumbs]
    pad, text_h = 8, 24
    title_h, heading_h = (32 if title else 0), (22 if headings else 0)
    width = max(len(row) for row in rows) * (cell + pad) + pad
    sheet = Image.new(
        "RGB", (width, title_h + heading_h + sum(h + text_h + pad for h in heights) + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 6), title, fill="black", font=font(18))
    for c, heading in enumerate(headings):
        centre = pad + c * (cell + pad) + cell // 2
        draw.text((centre, title_h + heading_h - 5), heading, fill="black", font=font(14), anchor="ms")
    y = title_h + heading_h + pad
    for row, height, caption in zip(thumbs, heights, captions):
        for c, thumb in enumerate(row):
            sheet.paste(
                thumb, (pad + c * (cell + pad) + (cell - thumb.width) // 2, y + (height - thumb.height) // 2)
            )
        draw.text((pad, y + height + 3), caption, fill="black", font=font(15))
        y += height + text_h + pad
    return sheet


def thumbnail(picture: Image.Image, cell: int) -> Image.Image:
    """``picture`` in RGB, scaled to fit a ``cell`` square (its longest side ``cell``)."""
    thumb = picture.convert("RGB")
    scale = cell / max(thumb.size)
    return thumb.resize(
        (max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))), Image.Resampling.LANCZOS
    )


_BOX_COLOURS = ((255, 40, 40), (40, 200, 40), (40, 120, 255), (255, 180, 0), (200, 60, 220))


def draw_boxes(
    photo: Image.Image,
    boxes: Sequence[tuple[tuple[float, float, float, float], str]],
    width: int = 0,
    label_size: int = 0,
) -> Image.Image:
    """The photo with labelled boxes ``((x0, y0, x1, y1), label)``, the first
    drawn last (on top); colours cycle through five. Each label sits inside its
    box's top-left corner, moved down past labels already placed so that none
    hides another, and inside the picture. ``label_size`` is the font's
    height in pixels (default: a 25th of the photo's shorter side, at least 12)."""
    out = photo.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    line = width or max(2, round(min(out.size) / 150))
    label_font = font(label_size or max(12, round(min(out.size) / 25)))
    for i, (box, _) in reversed(list(enumerate(boxes))):
        x0, y0, x1, y1 = box
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=_BOX_COLOURS[i % len(_BOX_COLOURS)], width=line)
    placed: list[tuple[float, float, float, float]] = []
    for i, (box, label) in enumerate(boxes):
        area = _label_area(draw, label, label_font, box, line, out.size, placed)
        placed.append(area)
        draw.rectangle(area, fill=_BOX_COLOURS[i % len(_BOX_COLOURS)])
        draw.text((area[0] + 2, area[1] + 1), label, fill="white", font=label_font)
    return out


#: Boxes of classes less probable than this are drawn thin (a guess, not a finding).
FAINT_PROBABILITY = 0.05


def draw_boxes_with_legend(
    photo: Image.Image,
    boxes: Sequence[tuple[tuple[float, float, float, float], str, float]],
    label_size: int = 0,
) -> Image.Image:
    """The photo with boxes ``((x0, y0, x1, y1), label, probability)`` and,
    below it, a legend strip naming each box's colour: no label covers the
    object. The first box is drawn last (on top); boxes of classes below
    :data:`FAINT_PROBABILITY` are drawn one pixel wide."""
    label_font = font(label_size or max(12, round(min(photo.size) / 30)))
    line = max(2, round(min(photo.size) / 150))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row = math.ceil(probe.textbbox((0, 0), "Ag%", font=label_font)[3]) + 6
    out = Image.new("RGB", (photo.width, photo.height + row * len(boxes) + 4), "white")
    out.paste(photo.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    for i, (box, _, probability) in reversed(list(enumerate(boxes))):
        x0, y0, x1, y1 = box
        width = line if probability >= FAINT_PROBABILITY else 1
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=_BOX_COLOURS[i % len(_BOX_COLOURS)], width=width)
    for i, (_, label, probability) in enumerate(boxes):
        top = photo.height + 2 + i * row
        colour = _BOX_COLOURS[i % len(_BOX_COLOURS)]
        draw.rectangle([4, top + 2, 4 + row - 6, top + row - 4], fill=colour)
        faint = " (thin: below 5%)" if probability < FAINT_PROBABILITY else ""
        draw.text(
            (row + 4, top + 1), f"{i + 1}. {label} {probability:.0%}{faint}", fill="black", font=label_font
        )
    return out


def _label_area(
    draw: ImageDraw.ImageDraw,
    label: str,
    label_font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    box: tuple[float, float, float, float],
    line: int,
    size: tuple[int, int],
    placed: Sequence[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    """Where a label's background goes: the box's top-left corner, stepped down
    below any label it would overlap (or up from the bottom when out of room)."""
    left, top, right, bottom = draw.textbbox((0, 0), label, font=label_font)
    w, h = right - left + 4, bottom - top + 2 + top
    x = min(max(0.0, box[0] + line), max(0.0, size[0] - w))
    y = min(max(0.0, box[1] + line), max(0.0, size[1] - h))
    for _ in range(len(placed) + 1):
        hit = next((p for p in placed if x < p[2] and p[0] < x + w and y < p[3] and p[1] < y + h), None)
        if hit is None:
            break
        y = hit[3] + 1 if hit[3] + 1 + h <= size[1] else max(0.0, hit[1] - h - 1)
    return (x, y, x + w, y + h)


def mask_image(mask: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """A boolean mask as a black-and-white picture, resized to ``size`` (width, height)."""
    picture = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")
    return picture.resize(size, Image.Resampling.NEAREST) if size else picture
