# realtime-worker: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools js lint test test-db demo devstack clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "realtime-worker needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# promtool and prometheus (from Debian's package, unpacked into .tools/), kubectl, hadolint.
tools: install
	bash scripts/install-tools

# @supabase/realtime-js and ws for the conformance tests (pinned in tests/js/package-lock.json).
js: tests/js/node_modules/.package-lock.json

tests/js/node_modules/.package-lock.json: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

lint: install
	$(BIN)/ruff check worker devstack tests examples deploy/new-org bench
	$(BIN)/ruff format --check worker devstack tests examples deploy/new-org bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every test: lint, types, then the whole suite. Without DATABASE_URL the suite
# starts an embedded Postgres; with it, each run makes a throw-away database there.
test: lint tools js
	$(BIN)/python -m pytest -n 4 --dist loadfile

# Only the Postgres-level tests (migrations, RLS matrix); CI runs them against a second server version.
test-db: install
	$(BIN)/python -m pytest -m db

devstack: install
	$(BIN)/python -m devstack up

demo: install
	$(BIN)/python -m devstack demo

clean:
	rm -rf $(VENV) .devstack .tools tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache

# The long soak (tests/faults/test_soak.py): SOAK_MINUTES of 3 s tokens and a steady event stream.
SOAK_MINUTES ?= 10
.PHONY: soak
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m pytest -m slow -k soak tests/faults

# Benchmarks (docs/performance.md): the full run takes about 11 minutes; `python -m bench --quick` a few.
.PHONY: bench
bench: install
	$(BIN)/python -m bench
