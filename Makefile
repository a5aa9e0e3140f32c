# Ponder: `make run` launches the app, `make test` runs lint and every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python compiles llama.cpp on install (about 5 minutes on 2 cores, then cached by pip).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test lint format bench screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(PY)
	$(PIP) install -e '.[test,mlx]'
	touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(PY) -m app

test: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.test-deps
	$(PY) bench/engine_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
