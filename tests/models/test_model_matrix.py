"""The model matrix of docs/models.md: every method on every model family,
each cell checked against its oracle (``benchmarks/model_matrix.py``), and
the table in the docs the one a run gives now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

#: Slow (a real browser, a Ray instance, many threads, the whole matrix): `make test-fast` skips it.
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "model_matrix.py"


@pytest.fixture(scope="module")
def model_matrix():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("model_matrix", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["model_matrix"] = module  # (its dataclasses look their module up there)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("model_matrix", None)
        sys.path.remove(str(SCRIPT.parent))


@pytest.fixture(scope="module")
def cells(model_matrix):
    pytest.importorskip("transformers")
    return model_matrix.matrix(model_matrix.families())


def test_no_cell_fails_and_every_cell_that_cannot_work_says_why(cells):
    failed = [f"{c.family} / {c.method}: {c.note}" for c in cells if c.status == "fail"]
    assert not failed
    assert all(c.note for c in cells if c.status == "n/a")
    assert sum(c.status == "pass" for c in cells) >= 100


def test_the_docs_show_the_current_matrix(model_matrix, cells):
    doc = model_matrix.DOC.read_text()
    assert model_matrix._with_table(doc, model_matrix.table(cells)) == doc, (
        "docs/models.md is stale: run python benchmarks/model_matrix.py"
    )


def test_a_wrong_map_fails_its_cell(model_matrix, monkeypatch):
    """The matrix can fail: a method made to return a wrong map is caught."""
    import deepinside

    real = deepinside.attribute

    def doubled(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        return type(found)(found.method, found.raw * 2, found.map, found.scores, found.targets)

    monkeypatch.setattr(deepinside, "attribute", doubled)
    build, size, channels = model_matrix.zoo.HAND_WRITTEN["dict output"]
    cell = model_matrix.run_cell(build, size, channels, "dict output", "gradient")
    assert cell.status == "fail" and "differs from its oracle" in cell.note
