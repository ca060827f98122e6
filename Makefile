# flowstate — the two commands of the Quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test check lint typecheck contracts pytest fast test-pg conformance bench bench-json clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The install compiles the modules setup.py lists with mypyc (a minute or so), in place; an
# edit to one of them rebuilds it. FLOWSTATE_COMPILE=0 installs the pure-Python package.
COMPILED_SOURCES := $(shell sed -n 's|^    "\(flowstate/.*\.py\)",$$|src/\1|p' setup.py)

$(VENV)/.installed: pyproject.toml setup.py $(COMPILED_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml setup.py $(COMPILED_SOURCES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

## run: the example order workflow, its Tasks served by local Python functions
run: $(VENV)/.installed
	$(BIN)/flowstate run examples/order_workflow.json \
		--functions examples/order_functions.py \
		--input @examples/order_input.json

## test: every gate, then the whole test suite (all markers) with warnings as errors
test: $(VENV)/.installed-dev lint typecheck contracts pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

contracts: $(VENV)/.installed-dev
	$(BIN)/lint-imports

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -W error -q

## fast: only the unmarked in-process tests
fast: $(VENV)/.installed-dev
	$(BIN)/pytest -W error -q -m "not slow and not postgres and not corpus"

## test-pg: the PostgreSQL tests (storage suite, multi-node) against FLOWSTATE_TEST_PG
## [default postgresql://postgres@127.0.0.1:5432/postgres], failing if it is unreachable
test-pg: $(VENV)/.installed-dev
	REQUIRE_PG=1 $(BIN)/pytest -W error -q -m postgres

## conformance: the shared AWS-recorded corpus, with the skip table
conformance: $(VENV)/.installed
	$(BIN)/flowstate conformance ../shared/conformance --skip tests/conformance_skip.toml

## bench: every workload on flowstate, moto and aws-local-stepfunctions; prints a table
## bench-json: the same, one JSON object per line. Narrow with WORKLOAD=, EXECUTIONS=, ROUNDS=, REPEAT=
# The peers live in .bench/ (git-ignored), at pinned versions, in their own environments.
PEERS        := .bench
MOTO_VERSION := 5.2.5
ALS_VERSION  := 3.0.0
ROUNDS       ?= 3
REPEAT       ?= 1
BENCH_ARGS    = --rounds $(ROUNDS) --repeat $(REPEAT) $(if $(WORKLOAD),--workload $(WORKLOAD)) \
                $(if $(EXECUTIONS),--executions $(EXECUTIONS)) $(if $(ENGINES),--engines $(ENGINES))

$(PEERS)/moto/.installed:
	$(PYTHON) -m venv $(PEERS)/moto
	$(PEERS)/moto/bin/python -m pip install --quiet 'moto[stepfunctions,awslambda]==$(MOTO_VERSION)' >&2
	touch $@

$(PEERS)/node/.installed:
	npm install --silent --no-audit --no-fund --prefix $(PEERS)/node \
		aws-local-stepfunctions@$(ALS_VERSION) >&2
	touch $@

bench: $(VENV)/.installed-dev $(PEERS)/moto/.installed $(PEERS)/node/.installed
	@$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

bench-json: $(VENV)/.installed-dev $(PEERS)/moto/.installed $(PEERS)/node/.installed
	@$(BIN)/python benchmarks/bench.py --json $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
	find src -name "*.so" -delete
