# sessionflow: `make demo` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
INSTALLED  := $(VENV)/.installed

.PHONY: help setup jars browser js-clients demo test bench bench-quick wrk lint lock prefect-server broker-start broker-stop broker-status topics clean

help:
	@echo "make demo    - set up, start the local Kafka broker, run the main job end to end"
	@echo "make test    - set up, lint (ruff, mypy) and run every test (the broker ones included)"
	@echo "make bench   - benchmarks (writes bench/results.md); make bench-quick - a subset"
	@echo "make broker-start | broker-stop | broker-status | topics | lint | clean"

# The development environment, installed from the committed dev lock (the runtime lock
# plus the dev extra) so every install is the same.
$(INSTALLED): pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Apache Kafka's jars from Maven Central, cached outside git (see infra/kafka/README.md).
jars: $(INSTALLED)
	$(BIN)/sessionflow broker jars

setup: $(INSTALLED) jars

# Debian's Chromium for the tracker's browser tests (Playwright drives it; no download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Third-party browser trackers (Plausible's, minimal-analytics' GA4) that the collector's
# browser tests drive, from the committed package-lock.json: `npm ci`, exact versions.
NPM_INSTALLED := node_modules/.installed
$(NPM_INSTALLED): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

js-clients: $(NPM_INSTALLED)

demo: setup
	$(BIN)/sessionflow demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers (pytest-xdist), a test file each at a time, so a file's module-scoped builds
# are made once: most tests wait on brokers, servers and subprocesses, so the two cores overlap.
test: setup browser js-clients lint
	$(BIN)/pytest -v -n 2 --dist loadfile

# Benchmarks: medians of repeated runs, quoted as ratios to a baseline from the same run.
# `make bench` writes bench/results.md (committed); `make bench-quick` is a subset (< 3 min).
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: setup wrk
	$(BIN)/python -m bench.run

bench-quick: setup wrk
	$(BIN)/python -m bench.run --quick

# The local Prefect server, in the background (see infra/prefect/README.md); the flow
# commands and `sessionflow serve` use it while it runs. Stop: sessionflow prefect stop.
prefect-server: $(INSTALLED)
	$(BIN)/sessionflow prefect start

broker-start: setup
	$(BIN)/sessionflow broker start

broker-stop: $(INSTALLED)
	$(BIN)/sessionflow broker stop

broker-status: $(INSTALLED)
	$(BIN)/sessionflow broker status

topics: $(INSTALLED)
	$(BIN)/sessionflow topics

# Regenerate the locks after changing dependencies in pyproject.toml (uv keeps the pins
# they already hold where it can). requirements.lock: what `pip install sessionflow`
# resolves, the runtime dependencies only; requirements-dev.lock: those plus the dev extra,
# constrained to requirements.lock so a package in both has one version. Universal: a
# pin that applies on some platforms or Pythons only carries its marker.
lock: $(INSTALLED)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --extra dev --python-version 3.11 \
	  -c requirements.lock -o requirements-dev.lock

clean:
	-$(BIN)/sessionflow broker stop
	rm -rf $(VENV) data node_modules .pytest_cache .mypy_cache .ruff_cache
