# Two commands for a fresh clone: `make demo` (the main job) and `make test`.
# Each creates .venv if missing and installs what it needs. PyTorch is pinned
# to 2.13.0, whose CPU build lies on this machine's disk (an unpinned torch
# would pull a multi-GB CUDA build).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/deepinside demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q

# The quick subset for development: all but the slow tests (browser, Ray, many threads, the model matrix).
test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m "not slow"

# The rules are in pyproject.toml ([tool.ruff], [tool.mypy]); both tools come with the test extra.
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/saliency_throughput.py

clean:
	rm -rf $(VENV) deepinside-demo deepinside-out
