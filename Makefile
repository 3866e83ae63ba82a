# AutoBot: `make run` to serve on http://127.0.0.1:8000, `make test` to run the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench bench-quick setup setup-dev migrate clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

migrate: setup
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --noinput -v 0
	$(VENV)/bin/uvicorn autobot.asgi:application --host $(HOST) --port $(PORT) --no-proxy-headers $(UVICORN_ARGS)

# The SQLite pass runs everything; with AUTOBOT_TEST_DATABASE_URL set, the tests marked
# `postgres` then run again with PostgreSQL as the database.
test: setup-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	@if [ -n "$$AUTOBOT_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL pass: $$AUTOBOT_TEST_DATABASE_URL"; \
		DATABASE_URL="$$AUTOBOT_TEST_DATABASE_URL" $(VENV)/bin/pytest -m postgres -p no:cacheprovider $(PYTEST_ARGS); \
	fi

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# Every bench/*.py, then one table of figures against their same-run baselines, and
# bench/results/latest.json with the machine facts (docs/performance.md). BENCH=api chat: only those.
bench: setup-dev
	$(PY) bench/run.py $(BENCH)

bench-quick: setup-dev
	$(PY) bench/run.py --quick $(BENCH)

clean:
	rm -rf $(VENV) var/static var/test-artifacts
