# geoby: `make demo` serves the sample town, `make test` runs the whole suite.
# Both work on a fresh machine: the venv, the Python packages and (through
# `geoby db up`, as root on Debian/Ubuntu) PostgreSQL and PostGIS are installed
# where missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install web tools db demo test test-fast bench reliability lint format clean notebooks

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "python3 venv module missing: install python3-venv" >&2; exit 1; fi; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# pygeoapi 0.21's wheel ships its own top-level `tests` package, which would
	@# shadow ours on import; it is not part of pygeoapi's API.
	rm -rf $(VENV)/lib/python*/site-packages/tests
	touch $(STAMP)

install: $(STAMP) web

# The web map's browser files: MapLibre GL JS from the npm registry, vendored into
# api/static/vendor (no CDN at run time); axe-core for the accessibility tests.
WEB_STAMP := web/node_modules/.built
web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json web/build.sh
	@command -v npm >/dev/null || { echo "npm missing: install Node.js 18+ and npm" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund && sh ./build.sh
	touch $(WEB_STAMP)

# OS tools the real-client tests and benchmarks drive: GDAL's ogrinfo/ogr2ogr,
# and headless Chromium with its driver for the web-map tests.
tools:
	@command -v ogrinfo >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdal-bin; \
	  else echo "ogrinfo missing: install GDAL's command-line tools (gdal-bin)" >&2; exit 1; fi; }
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "chromium missing: install the packages chromium and chromium-driver" >&2; exit 1; fi; }

db: install
	$(BIN)/geoby db up

demo: db web
	$(BIN)/geoby demo

# JupyterLab on 127.0.0.1 over the demo data, the API served beside it (stopped on exit).
notebooks: db web
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	$(BIN)/geoby demo --no-serve
	@$(BIN)/geoby serve >var/notebooks-api.log 2>&1 & api=$$!; trap "kill $$api" EXIT; \
	  $(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --notebook-dir notebooks

test: db tools web
	$(BIN)/python -m pytest

test-fast: db tools
	$(BIN)/python -m pytest -m "not slow"

bench: db tools
	@set -e; for b in bench/bench_*.py; do [ -e "$$b" ] || continue; $(BIN)/python "$$b"; done

# Hostile input, access, load, faults, operations and the dependency audit at full
# size (< 15 min); the report goes to bench/results/reliability.md. `make test`
# runs the same tests at their quick sizes.
reliability: db tools web
	$(BIN)/python bench/reliability.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	-$(BIN)/geoby db down
	rm -rf var/sample .pytest_cache
