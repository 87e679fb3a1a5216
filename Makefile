# Two commands set up a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test test-pg bench lint venv engines webforms-assets

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: venv
	$(PY) -m server init
	$(PY) -m server serve --host $(HOST) --port $(PORT)

# The ODK Web Forms engine for the engine tests (npm packages pinned in its package-lock.json).
ENGINES := tests/engines/webforms
engines: $(ENGINES)/node_modules/.package-lock.json

$(ENGINES)/node_modules/.package-lock.json: $(ENGINES)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(ENGINES) --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests/engines will fail (install Node.js 20, or SKIP_ENGINE_TESTS=1)"; fi

# ODK Web Forms for the fill page (/forms/<id>/fill), vendored in server/web/static/webforms/
# so that `make run` needs no npm. Versions are pinned in its package-lock.json; after changing
# them, run this and commit the new files.
webforms-assets:
	sh server/web/webforms_assets.sh

test: venv engines
	$(PY) -m pytest

test-pg: venv engines
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(PY) -m pytest

bench: venv
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(PY) -m tests.bench

lint: venv
	$(PY) -m ruff check server tests
