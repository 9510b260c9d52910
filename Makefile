# twinsim — two commands for a fresh machine: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORLD ?= data/demo

.PHONY: run test venv lint world clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned to the CPU wheel on disk, so nothing pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,flower]"
	touch $(STAMP)

venv: $(STAMP)

# The embedded demo federation: small world, one DP release per owner (charged to its
# ledger), twin models pre-fitted into the app's cache. Idempotent; demo.json marks it done.
$(WORLD)/demo.json: | $(STAMP)
	$(BIN)/twinsim demo --world $(WORLD) --seed 7 --prepare-only

world: $(WORLD)/demo.json

run: venv world
	$(BIN)/twinsim app --world $(WORLD)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy retail privacy twins simulation federation twinsim app_pages

test: venv browser-deps lint
	$(BIN)/python -m pytest -m "not slow" -q

bench: venv
	$(BIN)/python benchmarks/world.py

clean:
	rm -rf $(VENV) data/demo

# Headless Chromium for the browser tests (tests/browser): Debian's package, never a download
# by `playwright install`. CI runs as root.
.PHONY: browser-deps
browser-deps:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
