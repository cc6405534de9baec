"""What a method differentiates, in one place: one score per image, taken
from the model's output. A class index per image is the paper's S_c; a
:class:`ScoreTarget` generalises it to any scalar of the output (several
classes, a multi-label head, a region of a segmentation, a regression)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import DeepInsideError


class ScoreTarget:
    """A target given as a function of the model's output: ``target(output)``
    is one score per image ``(B,)``, differentiable. Subclasses holding
    per-image data (a mask per image, say) override :meth:`rows`."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def rows(self, index: torch.Tensor) -> ScoreTarget:
        """This target for the rows ``index`` of the batch it was made for
        (methods cut batches into chunks and repeat images)."""
        return self

    def resolved(self, index_of: Callable[[object], int]) -> ScoreTarget:
        """This target with classes named by the user resolved to indices by ``index_of``."""
        return self

    def fixed(self, output: torch.Tensor) -> ScoreTarget:
        """This target with what it chooses from the images' own ``output``
        fixed (a multi-label set of classes), so that noisy copies and path
        points are scored for the same thing as the images."""
        return self


#: What the engine explains: None (each image's top class), class indices
#: ``(B,)``, or a score target.
Targets = torch.Tensor | ScoreTarget | None

#: The class recorded for an image explained by a score target (no one class).
NO_CLASS = -1


def checked_targets(targets: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``targets`` ``(B,)`` checked against class scores ``(B, C)``, on their device."""
    if scores.dim() != 2:
        raise DeepInsideError(
            f"the model's output has shape {tuple(scores.shape)}, not class scores (batch, classes): "
            "explain it with a score function as the target (see deepinside.targets)"
        )
    batch, classes = scores.shape
    targets = targets.to(scores.device)
    if targets.shape != (batch,):
        raise DeepInsideError(f"need one target per image ({batch}), got shape {tuple(targets.shape)}")
    bad = (targets < 0) | (targets >= classes)
    if bool(bad.any()):
        raise DeepInsideError(
            f"target class {int(targets[bad][0])} is out of range: the model has classes 0 to {classes - 1}"
        )
    return targets.long()


def top_classes(output: torch.Tensor, targets: Targets, first: int = 0) -> Targets:
    """``targets`` for the rows ``first:`` of ``output``: each row's top class
    where None, checked class indices, or the score target's rows."""
    rows = output.shape[0]
    if isinstance(targets, ScoreTarget):
        return targets.rows(torch.arange(first, first + rows)).fixed(output)
    if targets is None:
        if output.dim() != 2:
            checked_targets(torch.zeros(rows, dtype=torch.long), output)  # the one-line refusal
        return output.detach().argmax(1)
    return checked_targets(targets[first : first + rows], output)


def target_scores(
    output: torch.Tensor, targets: Targets, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The score each image is explained by ``(b,)`` for the rows ``first:``
    of ``output``, and the class explained per row (:data:`NO_CLASS` for a
    score target)."""
    chosen = top_classes(output, targets, first)
    if isinstance(chosen, ScoreTarget):
        score = chosen(output)
        if not isinstance(score, torch.Tensor) or score.shape != (output.shape[0],):
            shape = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
            raise DeepInsideError(
                f"a target function must give one score per image ({output.shape[0]},), got {shape}"
            )
        return score, torch.full((output.shape[0],), NO_CLASS, dtype=torch.long, device=output.device)
    assert chosen is not None
    return output.gather(1, chosen[:, None])[:, 0], chosen


def repeated(targets: Targets, batch: int, times: int) -> Targets:
    """``targets`` for a batch of ``batch`` images repeated ``times`` times
    over (``x.repeat(times, ...)``: the whole batch, then again)."""
    if targets is None:
        return None
    if isinstance(targets, ScoreTarget):
        return targets.rows(torch.arange(batch).repeat(times))
    return targets.repeat(times)
