# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# make demo needs only the runtime dependencies; make test the dev group too.
RUNTIME_STAMP := $(VENV)/.runtime-$(SUM)
STAMP := $(VENV)/.installed-$(SUM)
BENCH_STAMP := $(VENV)/.bench-$(SUM)
# The sans-I/O core and the pure emulator core must be fully covered by the tests,
# the I/O side (adapters, server, CLI) at least to IO_MIN percent of branches.
CORE_COVERAGE := dgproto/_*.py,dgproto/emulator/*.py
IO_COVERAGE := transports/*.py,transports/cli/*.py
IO_MIN := 95

.PHONY: test test-pure demo lint typecheck bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.runtime-*
	touch $(RUNTIME_STAMP)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e . --group dev
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check dgproto transports tests benchmarks
	$(BIN)/ruff format --check dgproto transports tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy dgproto transports

# Coverage follows the CLI into its subprocesses (patch = subprocess in pyproject.toml).
# The dev group installs the speedups (orjson, websockets' C mask); PURE_TESTS run a
# second time with them blocked (DGPROTO_PURE=1, tests/conftest.py), as without the extra.
PURE_TESTS := tests/test_speedups.py tests/test_json.py tests/test_framing.py \
	tests/test_inbound.py tests/test_inbound_session.py tests/test_messages.py \
	tests/test_connection.py tests/test_hardening.py tests/test_flux_connection.py \
	tests/test_core_with_emulator.py tests/test_adapters.py
test: lint typecheck
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q
	DGPROTO_PURE=1 $(BIN)/coverage run -m pytest -q $(PURE_TESTS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report --include='$(CORE_COVERAGE)' --fail-under=100
	$(BIN)/coverage report --include='$(IO_COVERAGE)' --fail-under=$(IO_MIN)

# The speedup-affected tests alone, on the pure-Python fallbacks.
test-pure: $(STAMP)
	DGPROTO_PURE=1 $(BIN)/pytest -q $(PURE_TESTS)

demo: $(RUNTIME_STAMP)
	$(BIN)/python -m dgproto demo

# Fuzz both cores for FUZZ_SECONDS each (default 60); prints inputs tried, rate, findings.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m tests.fuzzing

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e . --group dev --group bench
	rm -f $(VENV)/.bench-*
	touch $(BENCH_STAMP)

# Writes benchmarks/results/ (about 16 minutes on 2 cores, the knee and the recording rounds included; see benchmarks/README.md).
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache .hypothesis build *.egg-info

# make docs: the Sphinx site (docs/) in docs/_build/html, warnings as errors. Its own
# dependency group and stamp, so `make test` never installs Sphinx; -E re-reads every page so a
# warning cannot hide in an incremental build.
.PHONY: docs
DOCS_STAMP := $(VENV)/.docs-$(SUM)

$(DOCS_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e . --group docs
	rm -f $(VENV)/.docs-*
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html
