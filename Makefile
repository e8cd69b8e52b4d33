# vae-gjs: `make train` and `make test` create .venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
# the suite on two workers, each test file on one (its module fixtures start its processes once)
PYTEST_WORKERS ?= 2

.PHONY: install train test lint format bench bench-fused bench-fused-sweep clean-venv

# The exact, tested package set is constraints.txt; pyproject.toml holds the ranges.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/run.py $(ARGS)

bench-fused: $(STAMP)
	$(PY) benchmarks/fused.py $(ARGS)

bench-fused-sweep: $(STAMP)
	$(PY) benchmarks/fused_sweep.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
