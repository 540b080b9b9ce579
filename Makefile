# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The sans-I/O core and the pure emulator core must be fully covered by the tests.
CORE_COVERAGE := dgproto/_*.py,dgproto/emulator/*.py

.PHONY: test demo lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check dgproto transports tests benchmarks
	$(BIN)/ruff format --check dgproto transports tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy dgproto transports

test: lint typecheck
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report --include='$(CORE_COVERAGE)' --fail-under=100
	$(BIN)/coverage report

demo: $(STAMP)
	$(BIN)/python -m dgproto demo

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.bench-*
	touch $(BENCH_STAMP)

# Writes benchmarks/results/ (about 6 minutes on 2 cores; see benchmarks/README.md).
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache .hypothesis build *.egg-info

# make docs: the Sphinx site (docs/) in docs/_build/html, warnings as errors. Its own
# extra and stamp, so `make test` never installs Sphinx; -E re-reads every page so a
# warning cannot hide in an incremental build.
.PHONY: docs
DOCS_STAMP := $(VENV)/.docs-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(DOCS_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	rm -f $(VENV)/.docs-*
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html
