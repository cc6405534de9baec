from __future__ import annotations

import sys
import textwrap

import pytest

_TINY = textwrap.dedent("""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.features(x).relu().mean((2, 3)))

    def build():
        return Tiny()
""")


@pytest.fixture
def tiny_module(tmp_path, monkeypatch):
    """``tinymod:build`` (3 classes, 16 px inputs) written in a fresh folder, not on the import path."""
    (tmp_path / "tinymod.py").write_text(_TINY)
    sys.modules.pop("tinymod", None)
    yield tmp_path
    sys.modules.pop("tinymod", None)
