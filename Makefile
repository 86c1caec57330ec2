# The two set-up commands of the README: `make dev` and `make test`.
# Both create .venv with the project installed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The quix-streams peers of bench.harness run in a venv of their own (bench/requirements-quix.txt says why).
QUIX_VENV := .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed

.PHONY: dev test lint install clean browser prometheus kcat quix

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(QUIX_STAMP): bench/requirements-quix.txt
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/pip install -q --upgrade pip
	$(QUIX_VENV)/bin/pip install -q -r bench/requirements-quix.txt
	touch $(QUIX_STAMP)

quix: $(QUIX_STAMP)

# ARGS passes options on, e.g. make dev ARGS="--customers 500 --rate 100".
dev: $(STAMP)
	$(BIN)/lifecycle dev $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The dashboard test drives Debian's Chromium (Playwright, executable /usr/bin/chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the dashboard test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The monitoring test runs Debian's Prometheus and its promtool against a live worker.
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || { \
		echo "installing Debian's prometheus for the monitoring test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

# The partitioner tests publish with Debian's kcat, as shops do (librdkafka's default partitioner).
kcat:
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing Debian's kcat for the partitioner tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }

test: lint browser prometheus kcat quix
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(QUIX_VENV) .pytest_cache .mypy_cache .ruff_cache
