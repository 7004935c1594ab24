# One command each: `make demo` (set up + run the SQLite demo), `make test` (set up + run every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo lint test test-minimum test-sqla14 test-sqla20 bench clean wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.core

# alembic-deploy is not on PyPI yet: `make wheel` builds dist/alembic_deploy-<version>-py3-none-any.whl
# from this source tree, for `pip install 'dist/alembic_deploy-...whl[postgresql]'` anywhere (an image,
# a CI runner; the example's Dockerfile installs it from its wheels/ folder).
wheel:
	$(PYTHON) -m pip wheel -q --no-deps -w dist .

demo: $(VENV)/.core
	$(BIN)/alembic-deploy demo

# The lint gate: ruff on all Python, mypy --strict on src/ (settings in pyproject.toml); `make test`
# runs it first.
lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

# Two pytest-xdist workers (each test has databases, ports and folders of its own), an idle one
# taking tests from the other (durations range from milliseconds to minutes); WORKERS=0 runs the
# suite in one process. The 30 slowest tests are listed at the end.
WORKERS ?= 2
test: $(VENV)/.test lint
	$(BIN)/pytest -n $(WORKERS) --dist worksteal --durations=30 $(PYTEST_ARGS)

# The whole suite in a venv of its own against the releases tests/<PINS>-versions.txt pins (run by
# hand; CI runs `test` on the newest): `minimum` the oldest pyproject.toml admits (SQLAlchemy 1.4.29,
# Alembic 1.13.0...), `sqla14` SQLAlchemy 1.4's last release with the last Alembic that supports it,
# `sqla20` the oldest SQLAlchemy 2. psycopg2 is installed where the constraints pin it or SQLAlchemy
# is 1.4: 1.4 has no psycopg 3 dialect, so the suite reaches PostgreSQL through psycopg2 there.
test-minimum: PINS = minimum
test-sqla14: PINS = sqla14
test-sqla20: PINS = sqla20
test-minimum test-sqla14: WITH = psycopg2-binary
test-minimum test-sqla14 test-sqla20:
	$(PYTHON) -m venv .venv-$(PINS)
	.venv-$(PINS)/bin/pip install -q --upgrade pip
	.venv-$(PINS)/bin/pip install -q -c tests/$(PINS)-versions.txt -e '.[test]' $(WITH)
	.venv-$(PINS)/bin/pytest $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(BIN)/python benchmarks/bench_upgrade.py
	$(BIN)/python benchmarks/bench_upgrade.py --scenarios noop-corpus
	$(BIN)/python benchmarks/bench_lock_queue.py

clean:
	rm -rf $(VENV) .venv-minimum .venv-sqla14 .venv-sqla20 .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
