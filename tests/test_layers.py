"""The layer rules of docs/architecture.md, checked on the source: each part of
deepinside imports only from the layers below it, algorithms never import
``pictures``, and no private name crosses a package boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import deepinside

PACKAGE = Path(deepinside.__file__).parent

#: Bottom to top; a part may import from earlier rows only (and from itself).
LAYERS = [
    {"errors"},
    {"io", "pictures"},
    {"models"},
    {"_core"},
    {"attribution"},
    {"localization", "visualization"},
    {"evaluation"},
    {"explain"},
    {"explain_files"},
    {"figures", "batch", "web"},
    {"cli"},
    {"__init__", "__main__"},
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}

#: Algorithms return tensors; only the class-model files module draws pictures.
NO_PICTURES = {"io", "models", "_core", "attribution", "localization", "evaluation"}
PICTURES_ALLOWED = {"visualization/output.py"}

#: Private on purpose but shared across packages (docs/architecture.md).
SHARED_PRIVATE = {"_core"}


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    """The ``from ... import`` statements that run, skipping ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _imports(path: Path) -> list[tuple[str, list[str], list[str]]]:
    """For each import of deepinside code in ``path``: the part imported from, the
    module path inside it, and the names imported."""
    here = path.relative_to(PACKAGE).parts[:-1]
    result = []
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if node.level:
            base = list(here[: len(here) - node.level + 1])
        elif node.module and node.module.split(".")[0] == "deepinside":
            base = []
            node = ast.ImportFrom(module=".".join(node.module.split(".")[1:]), names=node.names, level=0)
        else:
            continue
        target = base + [p for p in (node.module or "").split(".") if p]
        names = [a.name for a in node.names]
        if not target:  # ``from . import x`` at the package root imports part x
            result.extend((name, [], []) for name in names)
        else:
            result.append((target[0].removesuffix(".py"), target[1:], names))
    return result


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    assert {_part(p) for p in SOURCES} <= set(LAYER_OF)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_from_lower_layers(path: Path):
    part = _part(path)
    upward = [
        target
        for target, _, _ in _imports(path)
        if target != part and LAYER_OF.get(target, -1) >= LAYER_OF[part]
    ]
    assert not upward, f"{part} imports from {upward}, which are not below it (docs/architecture.md)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_algorithms_do_not_draw(path: Path):
    rel = path.relative_to(PACKAGE).as_posix()
    part = _part(path)
    if rel in PICTURES_ALLOWED or (part not in NO_PICTURES and part != "visualization"):
        return
    drawn = [t for t, _, names in _imports(path) if t == "pictures" or "pictures" in names]
    assert not drawn, f"{rel} imports pictures: algorithms return tensors"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_names_across_packages(path: Path):
    part = _part(path)
    crossing = [
        ".".join([target, *inner]) + ":" + ",".join(names)
        for target, inner, names in _imports(path)
        if target != part
        and target not in SHARED_PRIVATE
        and (any(p.startswith("_") for p in [target, *inner]) or any(n.startswith("_") for n in names))
    ]
    assert not crossing, f"{part} imports private names of another package: {crossing}"
