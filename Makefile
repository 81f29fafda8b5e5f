# Every target installs what it needs first: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test test-unit test-faults test-browser test-integration test-e2e lint format bench bench-append bench-rebuild bench-verify bench-sync bench-ingest bench-astrolabe docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install credledger with its test tools

run: install ## the service on :8080 (embedded PostgreSQL unless CREDLEDGER_DATABASE_URL is set)
	$(BIN)/credledger serve

demo: install ## the whole flow against a simulated Nextcloud, then the audit trail (under a minute)
	$(BIN)/credledger demo

# The browser test drives Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test: install $(CHROMIUM) ## the whole suite (embedded PostgreSQL unless CREDLEDGER_TEST_DATABASE_URL is set)
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-faults: install ## crash, kill and clock faults under load (also part of make test)
	$(BIN)/pytest tests/faults tests/e2e/test_resilience.py tests/e2e/test_replicas.py tests/e2e/test_log_under_load.py

test-browser: install $(CHROMIUM) ## the audit page in headless Debian Chromium
	$(BIN)/pytest tests/browser

test-integration: install
	$(BIN)/pytest tests/integration

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

WRK := /usr/bin/wrk
$(WRK):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

bench: $(BENCH_STAMP) $(WRK) ## every benchmark, then rewrite docs/benchmarks.md with their output
	$(BIN)/python -m bench.report

bench-append: install ## appends/s through the group-commit writer vs raw single-row inserts
	$(BIN)/python -m bench.append

bench-rebuild: install ## rebuild rate over 1,000,000 generated events
	$(BIN)/python -m bench.rebuild

bench-verify: install ## verify rate over 1,000,000 generated events, 1 and 2 workers, vs 200,000/s
	$(BIN)/python -m bench.verify

bench-sync: install ## users synced/s against the simulator, and the idle tick at 10k and 100k users
	$(BIN)/python -m bench.sync

bench-ingest: $(BENCH_STAMP) $(WRK) ## signed POST /api/v1/events end to end vs pgbench and eventsourcing
	$(BIN)/python -m bench.ingest

# psutil (for the peak RSS) comes with pgserver, so the plain install is enough.
bench-astrolabe: install ## Astrolabe's POST app-password req/s through the service vs the simulator direct
	$(BIN)/python -m bench.astrolabe

docs: install ## regenerate docs/configuration.md from the settings class
	$(BIN)/credledger config --format markdown > docs/configuration.md

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
