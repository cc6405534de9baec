"""Class names: resolve what a user types to a class index, in one place.

A class can be named by its index (``281`` or ``"281"``), its WordNet id
(``"n02123045"``) or any of its comma-separated names (``"tabby"``,
``"tabby cat"``), case-insensitively.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import DeepInsideError

_WNID = re.compile(r"^n\d{8}$")

IMAGENET_HINT = "search with: deepinside classes WORD"


@dataclass(frozen=True)
class ClassInfo:
    """One class: its index, WordNet id (may be empty) and names, best first."""

    index: int
    wnid: str
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        """The short display name (the first name)."""
        return self.names[0]


@dataclass(frozen=True)
class ClassIndex:
    """The classes of a classifier, searchable by index, WordNet id or name."""

    classes: tuple[ClassInfo, ...]
    #: Where to look names up, said when a name is not found.
    hint: str = field(default=IMAGENET_HINT, repr=False, compare=False)
    _by_key: dict[str, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, list[int]] = {}
        for info in self.classes:
            keys = {n.lower() for n in info.names}
            if info.wnid:
                keys.add(info.wnid.lower())
            for key in keys:
                by_key.setdefault(key, []).append(info.index)
        object.__setattr__(self, "_by_key", by_key)

    @classmethod
    def from_synset_lines(cls, lines: Iterable[str], hint: str = IMAGENET_HINT) -> ClassIndex:
        """Parse ``"n01440764 tench, Tinca tinca"`` lines, one class per line;
        a line without a WordNet id is the class's names (``"tabby, tabby cat"``)."""
        classes = []
        for index, line in enumerate(line for line in lines if line.strip()):
            head, _, rest = line.strip().partition(" ")
            if _WNID.match(head):
                wnid, names = head, rest
            else:
                wnid, names = "", line.strip()
            parts = tuple(n.strip() for n in names.split(",") if n.strip())
            classes.append(ClassInfo(index, wnid, parts or (f"class {index}",)))
        return cls(tuple(classes), hint)

    @classmethod
    def from_names(cls, names: Sequence[str], hint: str = "") -> ClassIndex:
        """A user's class names in output order, one entry per class, each as a
        line of a class file (a name, ``"tabby, tabby cat"``, or ImageNet's
        ``"n02123045 tabby, tabby cat"``).

        >>> ClassIndex.from_names(["cat", "dog"]).resolve("dog")
        1
        """
        if isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names):
            raise DeepInsideError("class names are a list of strings, one per class in output order")
        blank = [i for i, n in enumerate(names) if not n.strip()]
        if blank:
            raise DeepInsideError(f"class {blank[0]} has an empty name: give one name per class")
        found = cls.from_synset_lines(names, hint)
        if hint:
            return found
        if len(found) <= 10:
            listed = "this model's classes: " + ", ".join(c.label for c in found.classes)
            return cls(found.classes, listed)
        return cls(found.classes, "search with: model.classes.search('WORD')")

    @classmethod
    def numbered(cls, num_classes: int) -> ClassIndex:
        """Classes with no names but ``class 0``, ``class 1``, ..."""
        hint = (
            f"this model's classes are numbered 0 to {num_classes - 1}: name one by its index, "
            "or give the names with --classes FILE (in Python, classes=[...])"
        )
        return cls(tuple(ClassInfo(i, "", (f"class {i}",)) for i in range(num_classes)), hint)

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, index: int) -> ClassInfo:
        return self.classes[index]

    def resolve(self, name: int | str) -> int:
        """The class index for a user's word for a class.

        >>> imagenet_classes().resolve("Tabby Cat")
        281
        """
        if isinstance(name, bool):
            raise DeepInsideError(f"class {name!r} is not a class name or index")
        if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit()):
            index = int(name)
            if not 0 <= index < len(self):
                raise DeepInsideError(
                    f"class index {index} is out of range: this model has classes 0 to {len(self) - 1}"
                )
            return index
        key = str(name).strip().lower()
        found = self._by_key.get(key)
        if found is None:
            close = self.suggest(key)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise DeepInsideError(f"unknown class {name!r}{hint} ({self.hint})")
        if len(found) > 1:
            options = " or ".join(f"{i} ({self._describe(i)})" for i in found)
            raise DeepInsideError(
                f"class name {name!r} is ambiguous: {options}; name it by index or WordNet id"
            )
        return found[0]

    def resolve_many(self, names: Sequence[int | str]) -> list[int]:
        return [self.resolve(n) for n in names]

    def suggest(self, word: str, n: int = 5) -> list[str]:
        """Up to ``n`` class names for a word that names no class: first those
        that contain it as a word, in class order (``cat``: ``tabby cat``,
        ``tiger cat``, ...), then those closest in spelling."""
        key = word.strip().lower()
        has_word = re.compile(rf"\b{re.escape(key)}\b") if key else None
        containing = [
            name
            for info in self.classes
            for name in info.names
            if has_word is not None and has_word.search(name.lower())
        ]
        close = difflib.get_close_matches(key, list(self._by_key), n=n, cutoff=0.6)
        unique: dict[str, str] = {}
        for name in containing + close:
            unique.setdefault(name.lower(), name)
        return list(unique.values())[:n]

    def search(self, query: str) -> list[ClassInfo]:
        """The classes :meth:`matches` finds, best first."""
        return [info for info, _ in self.matches(query)]

    def matches(self, query: str) -> list[tuple[ClassInfo, str]]:
        """Classes for ``query``, best first, each with how it matched:
        ``"name"`` (a name is the query), ``"words"`` (its names hold query
        words as whole words; rarer words weigh more, so ``retriever dog``
        lists the retrievers before the many dogs), ``"part"`` (inside a word:
        ``cat`` in ``oystercatcher``), or ``"close"`` (the closest spellings,
        where nothing else matched). An index or WordNet id is that class."""
        q = query.strip().lower()
        if q.isdigit() and int(q) < len(self):
            return [(self.classes[int(q)], "name")]
        words = q.replace(",", " ").split()
        if not words:
            return []
        texts = [" ".join(c.names).lower() + " " + c.wnid.lower() for c in self.classes]
        tokens = [set(re.findall(r"[\w']+", t)) for t in texts]
        rarity = {w: math.log(len(self) / (1 + sum(w in t for t in texts))) + 1 for w in words}
        ranked = []
        for info, text, found in zip(self.classes, texts, tokens):
            exact = any(n.lower() == q for n in info.names) or info.wnid.lower() == q
            whole = sum(rarity[w] for w in words if w in found)
            part = sum(rarity[w] for w in words if w in text and w not in found)
            if exact or whole or part:
                kind = "name" if exact else "words" if whole else "part"
                ranked.append(((not exact, -(2 * whole + part), info.index), info, kind))
        if ranked:
            return [(info, kind) for _, info, kind in sorted(ranked, key=lambda r: r[0])]
        indices: dict[int, None] = {}
        for key in self.suggest(q, n=8):
            for i in self._by_key[key]:
                indices[i] = None
        return [(self.classes[i], "close") for i in indices]

    def _describe(self, index: int) -> str:
        info = self.classes[index]
        return ", ".join(info.names[:3]) + (f", {info.wnid}" if info.wnid else "")


def read_class_file(path: str | os.PathLike[str]) -> ClassIndex:
    """A class file: one class per line in output order, its names
    comma-separated, optionally after its WordNet id (ImageNet's
    ``synset_words.txt`` format); blank lines are skipped."""
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise DeepInsideError(f"{path}: no such class file") from None
    except IsADirectoryError:
        raise DeepInsideError(f"{path}: is a folder, not a class file") from None
    except UnicodeDecodeError:
        raise DeepInsideError(f"{path}: not a UTF-8 text file of class names, one per line") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DeepInsideError(f"{path}: no class names in it (one per line)")
    return ClassIndex.from_synset_lines(lines, f"search with: deepinside classes --classes {path} WORD")


_IMAGENET: ClassIndex | None = None


def imagenet_classes() -> ClassIndex:
    """The 1000 ImageNet-1k classes in the standard order (shipped with the package)."""
    global _IMAGENET
    if _IMAGENET is None:
        text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text("utf-8")
        _IMAGENET = ClassIndex.from_synset_lines(text.splitlines())
    return _IMAGENET
