"""benchmarks/results/ keeps its contract (benchmarks/README.md): every file
a JSON result with the header that says what it was measured on, and every
file named in the README's table of which script writes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HEADER = ("benchmark", "command", "commit", "date", "torch", "device", "threads", "results")


@pytest.mark.parametrize("path", sorted((BENCHMARKS / "results").iterdir()), ids=lambda p: p.name)
def test_every_result_file_has_the_header_and_its_script(path):
    assert path.suffix == ".json", f"{path.name}: results are JSON files with the header"
    found = json.loads(path.read_text(encoding="utf-8"))
    assert [k for k in HEADER if k not in found] == [], f"{path.name}: header incomplete"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", found["commit"]), path.name
    readme = (BENCHMARKS / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"[`/]{re.escape(path.name)}[`\s]", readme), (
        f"{path.name}: benchmarks/README.md does not say which script writes it"
    )
