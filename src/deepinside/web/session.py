"""What every handler of the page shares: one model, the limits, and the
server's temporary folder for uploads and result files."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import DeepInsideError
from ..io.names import slug
from ..models.classifier import Classifier, Prediction
from .limits import Limits

#: The class box's first choice: explain the photo's top-1 prediction.
TOP1 = "top-1 prediction"

_CHOICE = re.compile(r"^(\d+) · ")


@dataclass
class Server:
    """The shared state of one running app. The model is only ever read:
    every library call leaves it as it was, so requests share it."""

    model: Classifier
    limits: Limits
    workdir: Path
    class_choices: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.class_choices = [class_choice(self.model, i) for i in range(len(self.model.classes))]

    def result_folder(self) -> Path:
        """A new folder for one request's files, inside the server's temporary folder."""
        return Path(tempfile.mkdtemp(prefix="result-", dir=self.workdir))

    def resolve_class(self, text: str | None) -> int | None:
        """A class chosen in the box (one of its choices, or a typed index,
        WordNet id or name); None for the top-1 prediction."""
        text = (text or "").strip()
        if not text or text == TOP1:
            return None
        found = _CHOICE.match(text)
        if found and text in self.class_choices:
            return int(found.group(1))
        return self.model.classes.resolve(text)

    def resolve_classes(self, texts: list[str] | None) -> list[int]:
        indices = [c for c in (self.resolve_class(t) for t in texts or []) if c is not None]
        if not indices:
            raise DeepInsideError("choose at least one class (type a name, an index or a WordNet id)")
        return list(dict.fromkeys(indices))

    def predict(self, photo: Image.Image, k: int = 5) -> list[Prediction]:
        inputs, _ = self.model.prepare([photo])
        return self.model.predictions(self.model.scores(inputs), k)[0]


def class_choice(model: Classifier, index: int) -> str:
    """``"281 · tabby, tabby cat · n02123045"``: searchable by index, any name or WordNet id."""
    info = model.classes[index]
    return " · ".join(p for p in (str(index), ", ".join(info.names), info.wnid) if p)


def prediction_label(p: Prediction) -> str:
    """``"lorikeet · class 90"``: the index named as such (a bare number in
    brackets read like a score), and still unique where two classes share a name."""
    return f"{p.label} · class {p.class_index}"


def file_stem(photo: Image.Image) -> str:
    """A safe file stem for results about ``photo`` (from its name, never a path)."""
    return slug(str(getattr(photo, "filename", "") or "photo"))[:40] or "photo"
