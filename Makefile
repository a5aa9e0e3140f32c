# Ponder: `make run` launches the app, `make test` runs lint and every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Every install takes the exact versions in constraints.txt (bounds stay in pyproject.toml).
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(PIP) install -c $(CONSTRAINTS)
# llama-cpp-python compiles llama.cpp on install (about 5 minutes on 2 cores, then cached by pip).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test lint format bench screenshots package package-smoke constraints clean

ifeq ($(OS),Windows_NT)
  PLATFORM := windows
else ifeq ($(shell uname -s),Darwin)
  PLATFORM := macos
else
  PLATFORM := linux
endif

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip

$(VENV)/.run-deps: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP_INSTALL) -e '.[test,mlx,serve]'
	touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(PY) -m app

test: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Each prints its figures as ratios measured side by side in one run (see README).
bench: $(VENV)/.test-deps
	$(PY) bench/engine_overhead.py
	$(PY) bench/plan_accuracy.py
	$(PY) bench/download.py --size-mb 1024
	$(PY) bench/remote_overhead.py
	$(PY) bench/serve_overhead.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui_stream.py

$(VENV)/.package-deps: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP_INSTALL) -e '.[test,package]'
	touch $@ $(VENV)/.run-deps

# The double-click app for this OS, in dist/Ponder (see packaging/).
package: $(VENV)/.package-deps
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
		packaging/ponder-$(PLATFORM).spec

# Start the built app (not the source tree) offscreen and get an answer from its engine.
package-smoke: package
	$(PY) packaging/smoke_test.py dist/Ponder

screenshots: $(VENV)/.test-deps
	QT_QPA_PLATFORM=offscreen $(PY) bench/screenshots.py docs/screenshots
	QT_QPA_PLATFORM=offscreen $(PY) bench/screenshots_wizard.py

# Pin what this virtual environment has now: run it in one that has the test, mlx and package
# extras installed, after changing a dependency, then test.
constraints:
	{ sed -n '/^#/p;/^#/!q' $(CONSTRAINTS); \
	  $(PIP) freeze --all --exclude-editable | grep -vE '^(#|-e |setuptools==|wheel==)'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) build dist *.egg-info
