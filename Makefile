# REIMS Anomaly. `make demo` runs the whole product on the embedded default (SQLite + a
# filesystem Celery broker under var/); `make test` runs the test suite.
VENV := .venv
# By default everything runs in .venv, created on first use from requirements-dev.txt (the runtime
# requirements.txt plus tests, lint and browser tests: `make test` needs them all); pass
# PYTHON=... (as CI does) to use another interpreter that already has the requirements.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(VENV)/bin/python
DEPS := $(VENV)/.installed
endif

.PHONY: help venv install demo test lint format bench drill migrate worker beat web clean

help:
	@echo "make demo   - install, migrate, load the demo portfolio, detect, start web+worker+beat"
	@echo "make test   - the test suite (uses DATABASE_URL / CELERY_BROKER_URL when set)"
	@echo "make bench  - the benchmarks in benchmarks/"
	@echo "make lint   - ruff (style, complexity) and mypy (services, selectors, kernel, numeric core)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv install: $(VENV)/.installed

demo: $(DEPS)
	$(PYTHON) manage.py rundemo

test: $(DEPS)
	PYTHON=$(PYTHON) scripts/run_tests.sh

lint: $(DEPS)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

format: $(DEPS)
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

# Benchmarks that write to a database get one of their own (never your DATABASE_URL's data).
BENCH_PG ?= postgres://postgres@127.0.0.1:5432
BENCH_REDIS ?= redis://127.0.0.1:6379

bench: $(DEPS)
	@for db in reims_bench_batch reims_bench_api; do \
	  psql "$(BENCH_PG)/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$$db'" | grep -q 1 \
	    || psql "$(BENCH_PG)/postgres" -qc "CREATE DATABASE $$db"; done
	$(PYTHON) benchmarks/demo_generation.py
	$(PYTHON) benchmarks/quality.py --ablation
	$(PYTHON) benchmarks/feedback_learning.py --extra-verdicts 10000
	$(PYTHON) benchmarks/detection_speed.py
	$(PYTHON) benchmarks/import_speed.py --postgres-url $(BENCH_PG)/reims_bench
	$(PYTHON) benchmarks/import_errors.py
	DATABASE_URL=$(BENCH_PG)/reims_bench_cache $(PYTHON) benchmarks/cache.py
	$(PYTHON) benchmarks/numba_warmup.py
	DATABASE_URL=$(BENCH_PG)/reims_bench_batch CELERY_BROKER_URL=$(BENCH_REDIS)/12 $(PYTHON) benchmarks/batch_throughput.py
	DATABASE_URL=$(BENCH_PG)/reims_bench_api CELERY_BROKER_URL=$(BENCH_REDIS)/13 $(PYTHON) benchmarks/batch_api_latency.py
	DATABASE_URL=$(BENCH_PG)/reims_bench_api CELERY_BROKER_URL=$(BENCH_REDIS)/13 $(PYTHON) benchmarks/batch_api_latency.py --as-manager

# Fault drill of batch reprocessing (worker SIGKILL, broker restarted empty, connections
# terminated) on PostgreSQL and a Redis server of its own (port 6390), real workers and beat.
drill: $(DEPS)
	PYTHON=$(PYTHON) scripts/fault_drill.sh

migrate: $(DEPS)
	$(PYTHON) manage.py migrate

web: $(DEPS)
	$(PYTHON) manage.py runserver 127.0.0.1:8000

worker: $(DEPS)
	$(PYTHON) -m celery -A reims worker -Q anomaly,default --loglevel INFO

beat: $(DEPS)
	$(PYTHON) -m celery -A reims beat --loglevel INFO

clean:
	rm -rf var/broker var/test-reports .coverage
