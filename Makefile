# The two commands in the README are `make demo` and `make test`; both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python may keep its bytecode caches even where the environment forbids them: pytest then
# rewrites the tests' assertions once, not on every run (~9 s of make test-unit's minute).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install hooks test lint typecheck tests test-unit test-soak demo bench clean

$(STAMP): pyproject.toml setup.py schemas/_envelope_native.c stream_app/_record_batches.c stream_app/_id_slots.c stream_app/_summary_rows.c stream_app/_buffers.h
	@echo "==> creating virtualenv in $(VENV) and installing driftline[dev] (about a minute on a fresh machine)"
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar off -q --upgrade pip
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The git pre-commit hook: ruff, ruff format, mypy and the import contracts on each commit.
hooks: $(STAMP)
	$(VENV)/bin/pre-commit install

lint: $(STAMP)
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@echo "==> import-linter (the layering contracts in pyproject.toml)"
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	@echo "==> mypy (strict)"
	$(VENV)/bin/mypy

tests: $(STAMP)
	@echo "==> pytest: unit, property, doctest, integration and fault tests (starts Kafka and PostgreSQL)"
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest

# The inner loop: no broker, no database server, no long simulations, both cores (under a
# minute). `make tests` runs everything, the slow simulations included.
test-unit: $(STAMP)
	HYPOTHESIS_PROFILE=unit $(PY) -m pytest -q -n 2 -m "not integration and not slow"

# The kill -9 crash test under seven seeds, ~15 minutes (make test runs seed 7 only).
SOAK_SEEDS ?= 7 21 22 23 24 25 26
test-soak: $(STAMP)
	@for seed in $(SOAK_SEEDS); do \
		echo "==> crash replay, seed $$seed"; \
		DRIFTLINE_CRASH_SEED=$$seed $(PY) -m pytest -q tests/integration/test_crash_replay.py -k three_kills || exit 1; \
	done

test: lint typecheck tests

demo: $(STAMP)
	$(PY) -m driftline demo

# Every figure of docs/benchmarks.md (about 45 minutes on 2 cores; each step prints progress).
bench: $(STAMP)
	$(PY) -m bench.detectors_bench --output docs/benchmarks.md
	$(PY) -m bench.pipeline_bench --output docs/benchmarks.md
	$(PY) -m bench.pipeline_bench --memory --output docs/benchmarks.md
	$(PY) -m bench.pipeline_bench --join --output docs/benchmarks.md
	$(PY) -m bench.alerts_bench --output docs/benchmarks.md
	$(PY) -m bench.api_bench --output docs/benchmarks.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

# Fuzz the native envelope decoder against the strict parser for FUZZ_SECONDS (not part of
# `make test`: it needs atheris and runs for minutes). Crash files land in the temp dir it names.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: $(STAMP)
	$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install --progress-bar off -q atheris
	$(PY) -m pip install --progress-bar off -q -e . --no-deps
	$(PY) fuzz/fuzz_native_decoder.py -max_total_time=$(FUZZ_SECONDS)

# The fault suite (tests/faults): a broker and a PostgreSQL of its own stopped and started
# while a worker runs, a worker joining and leaving, 10,000 bad messages (~5 minutes).
.PHONY: test-faults
test-faults: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest tests/faults -q -m faults
