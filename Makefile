# Two entry points for a fresh machine: `make run` and `make test`.
# Both bootstrap .venv themselves; nothing needs installing on the system.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CATALOG ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck docs install clean stop bench cluster cluster-drill test-cluster cluster-packages

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
	$(BIN)/ruff check gql_inventory tests bench cluster
	$(BIN)/ruff format --check gql_inventory tests bench cluster

typecheck: $(STAMP)
	$(BIN)/mypy

# The docs site (mkdocs.yml) into site/: --strict fails on a broken link, a missing
# anchor or a page left out of the nav. NO_MKDOCS_2_WARNING mutes mkdocs-material's banner.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# The local cluster (docs/scaling.md#local-cluster-drill): HAProxy and PgBouncer from
# Debian, installed here when missing (root only, as `make bench` installs wrk).
cluster-packages:
	@command -v haproxy >/dev/null && command -v pgbouncer >/dev/null || \
		(apt-get update && apt-get install -y haproxy pgbouncer)
	@command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)

# HAProxy before three `serve`, PgBouncer (transaction mode) before PostgreSQL, Redis;
# in the foreground, Ctrl-C stops it all.
cluster: $(STAMP) cluster-packages
	$(BIN)/python -m cluster up

# The three faults (kill -9 of one serve, PgBouncer restart, Redis restart) under load;
# prints the figures.
cluster-drill: $(STAMP) cluster-packages
	$(BIN)/python -m cluster drill

# The drill as a test (tests/cluster, marker `cluster`, left out of the default run).
test-cluster: $(STAMP) cluster-packages
	$(BIN)/pytest -m cluster -n 0 tests/cluster

# Stop what `make run` started: the server (its pid is in var/serve.pid), then the
# embedded PostgreSQL in var/pgdata (serve stops it itself when it exits normally).
stop:
	@if [ -f var/serve.pid ] && kill -0 "$$(cat var/serve.pid)" 2>/dev/null; then \
		kill -TERM "$$(cat var/serve.pid)"; \
		for i in $$(seq 1 150); do kill -0 "$$(cat var/serve.pid 2>/dev/null)" 2>/dev/null || break; sleep 0.2; done; \
		echo "gql-inventory serve stopped"; \
	fi
	@if [ -x $(BIN)/gql-inventory ]; then $(BIN)/gql-inventory stop-database; fi

# Deletes the venv and var/ (the embedded database with it): refused while they are in use.
clean:
	@if [ -f var/serve.pid ] && kill -0 "$$(cat var/serve.pid)" 2>/dev/null; then \
		echo "gql-inventory serve is running (pid $$(cat var/serve.pid)): run 'make stop' first" >&2; exit 1; \
	fi
	@if [ -x $(BIN)/gql-inventory ] && $(BIN)/gql-inventory database-status >/dev/null 2>&1; then \
		echo "the embedded PostgreSQL in var/pgdata is running: run 'make stop' first" >&2; exit 1; \
	fi
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
