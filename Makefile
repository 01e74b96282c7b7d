# The two commands of the README's Quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck test-sqlite test-postgres bench-realtime bench-sanitize

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the server on the embedded default (SQLite, in-process broker, files in ./var).
run: $(STAMP)
	$(BIN)/kakehashi serve

## Lint, type-check, then the whole suite on SQLite and on PostgreSQL + Redis.
test: $(STAMP)
	$(BIN)/python -m scripts.test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test-sqlite: $(STAMP)
	KAKEHASHI_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres: $(STAMP)
	KAKEHASHI_TEST_BACKEND=postgres $(BIN)/pytest

bench-realtime: $(STAMP)
	$(BIN)/python bench/realtime.py

bench-sanitize: $(STAMP)
	$(BIN)/python bench/sanitize.py
