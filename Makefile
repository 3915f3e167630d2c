# Two entry points for a fresh machine: `make run` and `make test`.
# Both bootstrap .venv themselves; nothing needs installing on the system.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CATALOG ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/gql-inventory migrate
	@if [ -n "$(CATALOG)" ]; then \
		$(BIN)/gql-inventory import-shopify $(CATALOG); \
	else \
		$(BIN)/gql-inventory seed-demo; \
	fi
	$(BIN)/gql-inventory serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check gql_inventory tests bench
	$(BIN)/ruff format --check gql_inventory tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.fanout

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
