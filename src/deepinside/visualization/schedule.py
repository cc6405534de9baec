"""Which size the model sees at each step: the octaves, one after another or in turn."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DeepInsideError

#: ``(scale, fraction)``: the model sees the image at ``scale`` times its size
#: for ``fraction`` of the steps (fractions are normalised to sum to 1).
Octave = tuple[float, float]


def octave_sizes(
    octaves: Sequence[Octave],
    size: tuple[int, int],
    steps: int,
    interleave: bool = False,
    late: Sequence[Octave] = (),
    late_from: int = 0,
) -> list[tuple[int, int]]:
    """The ``(H, W)`` the model sees at each of ``steps`` steps: ``octaves``
    until step ``late_from``, then ``late`` (where given) for the rest."""
    if late and 0 <= late_from < steps:
        early = _sizes(octaves, size, late_from, interleave)
        return early + _sizes(late, size, steps - late_from, interleave)
    return _sizes(octaves, size, steps, interleave)


def _sizes(
    octaves: Sequence[Octave], size: tuple[int, int], steps: int, interleave: bool
) -> list[tuple[int, int]]:
    if not octaves:
        return [size] * steps
    total = sum(f for _, f in octaves)
    if total <= 0 or any(f < 0 or s <= 0 for s, f in octaves):
        raise DeepInsideError(f"octaves need positive scales and non-negative fractions, got {list(octaves)}")
    shares = [f / total for _, f in octaves]
    if interleave:
        order = _interleaved(shares, steps)
    else:
        ends = [round(sum(shares[: i + 1]) * steps) for i in range(len(shares) - 1)] + [steps]
        order = [next(i for i, end in enumerate(ends) if step < end) for step in range(steps)]
    return [(max(16, round(size[0] * octaves[i][0])), max(16, round(size[1] * octaves[i][0]))) for i in order]


def _interleaved(shares: list[float], steps: int) -> list[int]:
    """Octave indices step by step, each visited in turn as evenly as its
    share allows (the one furthest behind its share goes next)."""
    counts = [0] * len(shares)
    order = []
    for step in range(steps):
        i = max(range(len(shares)), key=lambda j: shares[j] * (step + 1) - counts[j])
        counts[i] += 1
        order.append(i)
    return order


__all__ = ["Octave", "octave_sizes"]
