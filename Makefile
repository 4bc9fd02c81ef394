# The few commands people run. `make run` and `make test` install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-all generate lint bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e clients/python -e '.[dev]'
	@touch $@

node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@touch $@

## run: start storage, ingest, query and admin locally on the embedded RocksDB (Ctrl-C stops them)
run: $(STAMP)
	$(BIN)/allsource-suite

## test: lint (ruff, mypy, buf), then the whole test suite (unit, contract, integration, cross-language)
test: lint
	$(BIN)/pytest

## generate: regenerate gen/ from protos/ (a test fails when gen/ is stale)
generate: $(STAMP)
	$(BIN)/python tools/gen_protos.py

## lint: ruff (lint and format), mypy and buf lint; any finding fails
LINTED := services shared tools tests bench clients/python/src/allsource_client
lint: $(STAMP) node_modules/.installed-stamp
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy services shared tools clients/python/src/allsource_client
	cd protos && ../node_modules/.bin/buf lint

## bench: the benchmark suite through a running suite (see docs/PERFORMANCE.md)
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
