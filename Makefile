# One command each: `make demo` (set up + run the SQLite demo), `make test` (set up + run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-minimum bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/alembic-deploy demo

test: $(VENV)/.test
	$(BIN)/pytest $(PYTEST_ARGS)

# The whole suite against the oldest releases pyproject.toml admits (run by hand; CI runs `test`).
test-minimum:
	$(PYTHON) -m venv .venv-minimum
	.venv-minimum/bin/pip install -q --upgrade pip
	.venv-minimum/bin/pip install -q -c tests/minimum-versions.txt -e '.[test]'
	.venv-minimum/bin/pytest $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(BIN)/python benchmarks/bench_upgrade.py
	$(BIN)/python benchmarks/bench_lock_queue.py

clean:
	rm -rf $(VENV) .venv-minimum .pytest_cache build src/*.egg-info
