# Two commands set up a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test test-pg bench lint venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: venv
	$(PY) -m server init
	$(PY) -m server serve --host $(HOST) --port $(PORT)

test: venv
	$(PY) -m pytest

test-pg: venv
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(PY) -m pytest

bench: venv
	BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} $(PY) -m tests.bench

lint: venv
	$(PY) -m ruff check server tests
