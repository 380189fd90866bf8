# Two commands for a fresh machine with Python >= 3.11 and make:
#   make demo   - builds .venv on first use, then runs the nightly merge on the shipped demo returns
#   make test   - builds .venv on first use, then runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

# constraints.txt: the tested versions of every package (the README's Windows steps use it too).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipeline demo

test: $(STAMP)
	$(BIN)/python -m pytest

# For development: skips the slow marks (fuzzing, kill loops). CI runs everything (make test).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks tools
	$(BIN)/mypy pipeline schemas

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --files 15 200 2000

# Only what the build and the demo made: never the live inbox/ or outbox/ (a real year's work).
clean:
	rm -rf $(VENV) schemas/.compiled demo/inbox demo/outbox benchmarks/work .pytest_cache .ruff_cache .mypy_cache
	find $(wildcard pipeline schemas tests tools benchmarks) -name __pycache__ -type d -prune -exec rm -rf {} +
