# The few commands people run. `make run` and `make test` install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make run` installs what running needs (the suite, and grpcurl to talk to it); the other targets add
# the development tools (test servers, linters, protoc).
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: run test test-all generate lint bench clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml clients/python/pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e clients/python -e '.[tools]'
	@touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

## run: start storage, ingest, query and admin locally on the embedded RocksDB (Ctrl-C stops them)
run: $(RUN_STAMP)
	$(BIN)/allsource-suite

## test: lint (ruff, mypy, buf), then the whole test suite (unit, contract, integration, cross-language):
##       on two workers, then the tests that measure time (marked exclusive) alone
test: lint
	$(BIN)/pytest -n 2 --dist loadfile -m "not exclusive"
	$(BIN)/pytest -m exclusive

## generate: regenerate gen/ from protos/ (a test fails when gen/ is stale)
generate: $(DEV_STAMP)
	$(BIN)/python tools/gen_protos.py

## lint: ruff (lint and format), mypy and buf lint; any finding fails
LINTED := services shared tools tests bench clients/python/src/allsource_client
lint: $(DEV_STAMP) node_modules/.installed-stamp
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy services shared tools clients/python/src/allsource_client
	cd protos && ../node_modules/.bin/buf lint

## bench: the benchmark suite through a running suite (see docs/PERFORMANCE.md)
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
