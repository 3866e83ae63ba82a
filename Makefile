# AutoBot: `make run` to serve on http://127.0.0.1:8000, `make test` to run the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# make serve: uvicorn worker processes, and where they share their metrics (wiped at each start).
WORKERS ?= 2
PROMETHEUS_MULTIPROC_DIR ?= $(or $(AUTOBOT_VAR_DIR),$(CURDIR)/var)/metrics

.PHONY: run serve serve-env test lint bench bench-quick setup setup-dev migrate clean

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

# Production: WORKERS uvicorn processes on PostgreSQL + Redis, every setting from the environment
# (docs/deployment.md). Refused, before anything else, without DATABASE_URL and REDIS_URL: several
# workers on SQLite and the in-memory channel layer would each see only their own sockets.
serve: serve-env migrate
	$(PY) manage.py collectstatic --noinput -v 0
	mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)" && find "$(PROMETHEUS_MULTIPROC_DIR)" -maxdepth 1 -name '*.db' -delete
	PROMETHEUS_MULTIPROC_DIR="$(PROMETHEUS_MULTIPROC_DIR)" exec $(VENV)/bin/uvicorn autobot.asgi:application \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) --no-proxy-headers $(UVICORN_ARGS)

serve-env:
	@case "$$DATABASE_URL" in postgres://*|postgresql://*|pgsql://*) ;; \
	  *) echo "make serve: set DATABASE_URL=postgres://user:password@host:5432/autobot" \
	          "(several workers need PostgreSQL; see docs/deployment.md)" >&2; exit 2;; esac
	@case "$$REDIS_URL" in redis://*|rediss://*|unix://*) ;; \
	  *) echo "make serve: set REDIS_URL=redis://host:6379/0" \
	          "(workers reach each other's sockets through Redis; see docs/deployment.md)" >&2; exit 2;; esac
	@case "$$AUTOBOT_DEBUG" in 1|true|yes|on|TRUE|True|YES|ON) \
	  echo "make serve: AUTOBOT_DEBUG is on; production runs with it off" >&2; exit 2;; esac

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
